"""Job functions the dashboard pages call: enqueue, cancel, status. DB writes only; the work
itself runs in ``python -m dashboard.worker``.

Usage::

    from db.session import session_scope
    from dashboard import jobqueue
    with session_scope() as s:
        job_id = jobqueue.enqueue_infer(s, model_id=1, imageset_id=3, condition_id="jpeg/q75")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from db import jobs
from db.imagesets import label_layout, sha256_file
from db.models import ORIGINAL, ImageSet, Model
from db.queries import get_or_create_model

JobView = jobs.JobView


def _require(session: Session, entity: type, key: Any, what: str) -> None:
    if session.get(entity, key) is None:
        raise KeyError(f"no {what} with id {key!r}")


def register_model(
    session: Session, weights: str | Path, *, name: str | None = None,
    cfg: str | Path | None = None, origin: str = "official",
) -> int:
    """Record a weights file as a model (hashing it) and return the model id."""
    path = Path(weights).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    config = {"cfg_path": str(Path(cfg).resolve())} if cfg is not None else {}
    model = get_or_create_model(session, name or path.stem, origin=origin, path=str(path),
                                sha256=sha256_file(path), config=config)
    return model.id


def enqueue_infer(
    session: Session, *, model_id: int, imageset_id: int, condition_id: str = ORIGINAL,
    batch_size: int = 16, device: str = "auto",
) -> int:
    """Queue scoring of an image set under a condition (derived files are made first)."""
    _require(session, Model, model_id, "model")
    _require(session, ImageSet, imageset_id, "image set")
    if session.get(Model, model_id).path is None:
        raise ValueError(f"model {model_id} has imported scores only (no weights file); "
                         f"it cannot run inference")
    return jobs.enqueue(session, "infer", {
        "model_id": model_id, "imageset_id": imageset_id, "condition_id": condition_id,
        "batch_size": batch_size, "device": device,
    })


def enqueue_make_condition(session: Session, *, imageset_id: int, condition_id: str) -> int:
    """Queue derivation of an image set's files under a condition."""
    _require(session, ImageSet, imageset_id, "image set")
    return jobs.enqueue(session, "make-condition",
                        {"imageset_id": imageset_id, "condition_id": condition_id})


def enqueue_register_folder(
    session: Session, folder: str, *, name: str, kind: str | None,
    generator: str | None = None,
) -> int:
    """Queue registration of a folder of images as an image set of label ``kind`` (real or
    fake), or, with ``kind=None``, as ``<name>-real`` and ``<name>-fake`` from its label
    subfolders (``db.imagesets.label_layout``)."""
    if kind is None and label_layout(folder) is None:
        raise ValueError(f"{folder} has no real/ and fake/ subfolders: choose its label")
    return jobs.enqueue(session, "import", {"source": "register-folder", "folder": folder,
                                             "name": name, "kind": kind, "generator": generator})


def enqueue_register_csv(
    session: Session, csv_path: str, root: str, *, name: str, generator: str | None = None,
    split: str | None = None,
) -> int:
    """Queue registration of an official-format CSV (image,class[,split]) under a root folder."""
    return jobs.enqueue(session, "import", {"source": "register-csv", "csv_path": csv_path,
                                             "root": root, "name": name, "generator": generator,
                                             "split": split})


def enqueue_import_study(session: Session, folder: str | None = None) -> int:
    """Queue an import of a study folder (default: the shipped robustness study)."""
    return jobs.enqueue(session, "import", {"source": "study", "folder": folder})


def enqueue_import_csv(
    session: Session, csv_path: str, *, model_name: str, condition_id: str = ORIGINAL,
    imageset: str | None = None, root: str | None = None, score_column: str | None = None,
) -> int:
    """Queue an import of an official ``infer`` output CSV as one run."""
    return jobs.enqueue(session, "import", {
        "source": "csv", "csv_path": csv_path, "model_name": model_name,
        "condition_id": condition_id, "imageset": imageset, "root": root,
        "score_column": score_column,
    })


def cancel(session: Session, job_id: int) -> str:
    """Request cancellation; returns the job's status after the request."""
    return jobs.request_cancel(session, job_id)


def retry(session: Session, job_id: int) -> None:
    """Requeue a failed or cancelled job; it resumes where it stopped."""
    jobs.requeue(session, job_id)


def status(session: Session, job_id: int) -> JobView:
    return jobs.get_job(session, job_id)


def recent(session: Session, *, statuses: list[str] | None = None, limit: int = 200) -> list[JobView]:
    return jobs.list_jobs(session, statuses=statuses, limit=limit)
