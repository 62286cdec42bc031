"""Job functions the dashboard pages call: enqueue, cancel, status. DB writes only; the work
itself runs in ``python -m jobs.worker``. Parameters are built as ``jobs.params`` records, so a
job is checked when it is queued exactly as the worker will read it.

Usage::

    from db.session import session_scope
    from dashboard import jobqueue
    with session_scope() as s:
        job_id = jobqueue.enqueue_infer(s, model_id=1, imageset_id=3, condition_id="jpeg/q75",
                                        actor=actor)

Every function takes the ``actor`` a page acts for (``db.owners``): new jobs are theirs; only a
job's owner or an administrator cancels, retries or deletes it, and only an administrator
registers server folders or CSVs (``NotAllowed`` otherwise, with a message for the page).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import jobs
from db.imagesets import label_layout, sha256_file
from db.models import ORIGINAL, ImageSet, Job, Model
from db.model_rows import register_model  # pages and tests call it from here too
from db.owners import LOCAL, Actor, require_admin, require_owner
from jobs.params import (
    CsvImport,
    InferParams,
    JobParams,
    MakeConditionParams,
    RegisterCsv,
    RegisterFolder,
    StudyImport,
    TrainParams,
)
from spai.weights import origin_of

JobView = jobs.JobView
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a training run's name (a folder)
# What each job kind counts in its progress (import jobs by source).
UNITS = {
    "infer": "images",
    "make-condition": "images",
    "train": "steps",
    "register-folder": "files",
    "register-csv": "rows",
    "study": "runs",
    "csv": "runs",
}


def _require(session: Session, entity: type, key: Any, what: str) -> None:
    if session.get(entity, key) is None:
        raise KeyError(f"no {what} with id {key!r}")


def _enqueue(session: Session, params: JobParams, actor: Actor) -> int:
    return jobs.enqueue(session, params.job_kind, params.to_dict(), owner=actor.owner)


def ensure_model(
    session: Session,
    weights: str | Path,
    *,
    cfg: str | Path | None = None,
    owner: str | None = None,
) -> int:
    """The id of the model whose weights file is ``weights``, registering it first if no model
    has that file (named after the file; ``<stem>-<sha8>`` when the name is taken)."""
    path = Path(weights).resolve()
    found = session.scalar(select(Model.id).where(Model.path == str(path)).order_by(Model.id))
    if found is not None:
        return found
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    name = path.stem
    if session.scalar(select(Model.id).where(Model.name == name)) is not None:
        name = f"{path.stem}-{sha256_file(path)[:8]}"
    return register_model(session, path, name=name, cfg=cfg, origin=origin_of(path), owner=owner)


def enqueue_infer(
    session: Session,
    *,
    model_id: int,
    imageset_id: int,
    condition_id: str = ORIGINAL,
    batch_size: int = 16,
    device: str = "auto",
    actor: Actor = LOCAL,
) -> int:
    """Queue scoring of an image set under a condition (derived files are made first)."""
    _require(session, Model, model_id, "model")
    _require(session, ImageSet, imageset_id, "image set")
    if session.get(Model, model_id).path is None:
        raise ValueError(f"model {model_id} has imported scores only (no weights file); it cannot run inference")
    return _enqueue(
        session,
        InferParams(
            model_id=model_id, imageset_id=imageset_id, condition_id=condition_id, batch_size=batch_size, device=device
        ),
        actor,
    )


def enqueue_score_set(
    session: Session,
    *,
    weights: str | Path,
    cfg: str | Path | None = None,
    imageset_ids: list[int],
    conditions: list[str],
    actor: Actor = LOCAL,
) -> list[int]:
    """Queue scoring of image sets under conditions with the model in ``weights`` (registered
    when needed); each job derives its condition's files first. Returns the job ids."""
    if not imageset_ids or not conditions:
        raise ValueError("choose at least one image set and one condition")
    model_id = ensure_model(session, weights, cfg=cfg, owner=actor.owner)
    return [
        enqueue_infer(session, model_id=model_id, imageset_id=i, condition_id=c, actor=actor)
        for i in imageset_ids
        for c in conditions
    ]


def run_names(session: Session, train_dir: str | Path) -> set[str]:
    """Training run names in use: earlier train jobs' tags and folders under ``train_dir``."""
    tags = {str((p or {}).get("tag")) for p in session.scalars(select(Job.params).where(Job.kind == "train"))}
    folder = Path(train_dir)
    return tags | ({p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set())


def free_run_name(session: Session, train_dir: str | Path, base: str = "finetune") -> str:
    """``base``, or ``base-2``, ``base-3``, ... : the first name no run uses."""
    used = run_names(session, train_dir)
    return next(n for n in [base] + [f"{base}-{i}" for i in range(2, len(used) + 3)] if n not in used)


def check_run_name(
    session: Session,
    tag: str,
    *,
    train_dir: str | Path,
    resume: bool = False,
) -> Path:
    """The output folder ``<train_dir>/<tag>`` of a new run (or, with ``resume``, of the run to
    continue); ``ValueError`` for a malformed name, a name already used (by an earlier job or a
    folder) unless resuming, or resuming a name never used."""
    if not RUN_NAME.fullmatch(tag):
        raise ValueError(
            f"run name {tag!r}: use letters, digits, '.', '_' or '-' (at most 64, not starting with '.' or '-')"
        )
    used = tag in run_names(session, train_dir)
    if used and not resume:
        raise ValueError(f'a run named {tag!r} exists: choose another name, or tick "Resume" to continue it')
    if resume and not used:
        raise ValueError(f"no run named {tag!r} to resume")
    return Path(train_dir) / tag


def enqueue_train(
    session: Session,
    params: dict[str, Any],
    *,
    train_dir: str | Path,
    resume: bool = False,
    actor: Actor = LOCAL,
) -> int:
    """Queue a training job writing to ``<train_dir>/<params['tag']>`` (see ``check_run_name``:
    an existing name is refused unless ``resume``, which continues that run from its last
    checkpoint)."""
    out = check_run_name(session, str(params.get("tag") or ""), train_dir=train_dir, resume=resume)
    if not params.get("data_path"):
        raise ValueError("train job: give data_path (a training CSV)")
    return _enqueue(session, TrainParams.from_dict(dict(params, output=str(out))), actor)


def enqueue_make_condition(
    session: Session,
    *,
    imageset_id: int,
    condition_id: str,
    actor: Actor = LOCAL,
) -> int:
    """Queue derivation of an image set's files under a condition."""
    _require(session, ImageSet, imageset_id, "image set")
    return _enqueue(session, MakeConditionParams(imageset_id=imageset_id, condition_id=condition_id), actor)


def enqueue_register_folder(
    session: Session,
    folder: str,
    *,
    name: str,
    kind: str | None,
    generator: str | None = None,
    actor: Actor,
) -> int:
    """Queue registration of a folder of images as an image set of label ``kind`` (real or
    fake), or, with ``kind=None``, as ``<name>-real`` and ``<name>-fake`` from its label
    subfolders (``db.imagesets.label_layout``). Administrators only."""
    require_admin(actor, "register server folders")
    if kind is None and label_layout(folder) is None:
        raise ValueError(f"{folder} has no real/ and fake/ subfolders: choose its label")
    return _enqueue(session, RegisterFolder(folder=folder, name=name, kind=kind, generator=generator), actor)


def enqueue_register_csv(
    session: Session,
    csv_path: str,
    root: str,
    *,
    name: str,
    generator: str | None = None,
    split: str | None = None,
    actor: Actor,
) -> int:
    """Queue registration of an official-format CSV (image,class[,split]) under a root folder.
    Administrators only (it reads server folders)."""
    require_admin(actor, "register server folders")
    return _enqueue(
        session, RegisterCsv(csv_path=csv_path, root=root, name=name, generator=generator, split=split), actor
    )


def enqueue_import_study(
    session: Session,
    folder: str | None = None,
    *,
    actor: Actor = LOCAL,
) -> int:
    """Queue an import of a study folder (default: the shipped robustness study; another
    folder is a server folder: administrators only)."""
    if folder is not None:
        require_admin(actor, "import a study from a server folder")
    return _enqueue(session, StudyImport(folder=folder), actor)


def enqueue_import_csv(
    session: Session,
    csv_path: str,
    *,
    model_name: str,
    condition_id: str = ORIGINAL,
    imageset: str | None = None,
    root: str | None = None,
    score_column: str | None = None,
    actor: Actor,
) -> int:
    """Queue an import of an official ``infer`` output CSV as one run. Administrators only
    (it reads server files)."""
    require_admin(actor, "import CSV files from the server")
    return _enqueue(
        session,
        CsvImport(
            csv_path=csv_path,
            model_name=model_name,
            condition_id=condition_id,
            imageset=imageset,
            root=root,
            score_column=score_column,
        ),
        actor,
    )


def describe(session: Session, views: list[JobView]) -> dict[int, str]:
    """A sentence per job ("Score coco-real with demo under meme/top-bottom"), with the names
    of its model and image set rather than their ids."""
    models = _names(session, Model, [v.params.get("model_id") for v in views])
    sets = _names(session, ImageSet, [v.params.get("imageset_id") for v in views])
    return {v.id: _sentence(v, models, sets) for v in views}


def unit(view: JobView) -> str:
    """What the job's progress counts (images, runs, files, ...)."""
    return UNITS.get(view.params.get("source") or view.kind, "items")


def progress_text(view: JobView) -> str:
    """``done/total unit`` (``?`` while the total is unknown)."""
    total = "?" if view.progress_total is None else view.progress_total
    return f"{view.progress_done}/{total} {unit(view)}"


def _names(session: Session, entity: type, ids: list[Any]) -> dict[int, str]:
    wanted = {int(i) for i in ids if isinstance(i, int) or str(i).isdigit()}
    if not wanted:
        return {}
    return dict(session.execute(select(entity.id, entity.name).where(entity.id.in_(wanted))).all())


def _sentence(v: JobView, models: dict[int, str], sets: dict[int, str]) -> str:
    p = v.params

    def name(ids: dict[int, str], key: str, what: str) -> str:
        value = p.get(key)
        try:
            return ids.get(int(value)) or f"{what} {value} (deleted)"
        except (TypeError, ValueError):
            return f"{what} {value!r}"

    cond = p.get("condition_id") or ORIGINAL
    under = "the original images" if cond == ORIGINAL else cond
    source = p.get("source")
    if v.kind == "infer":
        return f"Score {name(sets, 'imageset_id', 'set')} with {name(models, 'model_id', 'model')} on {under}"
    if v.kind == "make-condition":
        return f"Derive {name(sets, 'imageset_id', 'set')} under {cond}"
    if v.kind == "train":
        return f"Train {p.get('tag') or 'a model'} on {Path(str(p.get('data_path'))).name}"
    if source == "register-folder":
        target = (
            f"{p.get('name')}-real and {p.get('name')}-fake"
            if p.get("kind") is None
            else f"{p.get('name')} ({p.get('kind')})"
        )
        return f"Register folder {p.get('folder')} as {target}"
    if source == "register-csv":
        return f"Register {Path(str(p.get('csv_path'))).name} as {p.get('name')}"
    if source == "study":
        return "Import the robustness study" if not p.get("folder") else f"Import the study in {p.get('folder')}"
    if source == "csv":
        return f"Import {Path(str(p.get('csv_path'))).name} as scores of {p.get('model_name')}"
    return f"{v.kind} job"


def _require_job_owner(session: Session, job_id: int, actor: Actor, action: str) -> None:
    owner = session.scalar(select(Job.owner).where(Job.id == job_id))
    if owner is None and session.get(Job, job_id) is None:
        raise KeyError(f"no job with id {job_id}")
    require_owner(actor, owner, f"{action} job {job_id}")


def cancel(session: Session, job_id: int, *, actor: Actor) -> str:
    """Request cancellation (the job's owner or an administrator); returns the job's status
    after the request."""
    _require_job_owner(session, job_id, actor, "cancel")
    return jobs.request_cancel(session, job_id)


def retry(
    session: Session, job_id: int, *, actor: Actor, redo_errors: bool = False, error_kind: str | None = None
) -> int:
    """Requeue a job (the job's owner or an administrator); it resumes where it stopped. With
    ``redo_errors`` its error rows (only those of ``error_kind`` when given) are computed
    again, and a done job may be requeued. Returns how many error rows will be redone."""
    from db.retry import redo_errors as forget_errors

    _require_job_owner(session, job_id, actor, "retry")
    redone = forget_errors(session, job_id, kind=error_kind) if redo_errors else 0
    jobs.requeue(session, job_id, allow_done=redo_errors)
    return redone


def error_kinds(session: Session, job_id: int) -> dict[str, int]:
    """Error rows the job left, counted by kind (see ``db.retry``)."""
    from db.retry import error_kinds as kinds

    return kinds(session, job_id)


def status(session: Session, job_id: int) -> JobView:
    return jobs.get_job(session, job_id)


def recent(session: Session, *, statuses: list[str] | None = None, limit: int = 200) -> list[JobView]:
    return jobs.list_jobs(session, statuses=statuses, limit=limit)
