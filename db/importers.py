"""Import prediction files: the robustness study's folder and official ``infer`` output CSVs.

Images are keyed by their path in the original condition; rows of a degraded condition are
paired to them by path without extension (the study rewrote extensions), and the degraded
file's path is recorded as a derived image. Imported images have no file here
(``has_file=False``). Every insert ignores rows already present, so importing twice adds
nothing.

Study layout (``robustness/study/roger-study/``): one sub-folder per condition, one
``fake_<generator>.csv`` / ``real_<source>.csv`` per image set, and the fused "ROGER" model's
scores in ``combi-model/eval_splitmlp_*`` (columns ``spai,class``; same row order as the SPAI
file of the same set and condition). ``combi-model/eval_results`` is an early, superseded run
and is not imported.
"""

from __future__ import annotations

import csv
import filecmp
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.imagesets import ensure_imageset, inspect_image, resolve_inside
from db.models import ORIGINAL, Condition, DerivedImage, Image, ImageSet, Model
from db.queries import (
    bulk_insert_predictions,
    get_or_create_condition,
    get_or_create_model,
    get_or_create_run,
    insert_ignore,
)
from core.cli_errors import closest
from spai.weights import IMPORTED

REPO_ROOT = Path(__file__).resolve().parent.parent
STUDY_DIR = REPO_ROOT / "robustness" / "study" / "roger-study"
STUDY_ORIGIN = "study:roger"
SPAI_STUDY_MODEL = "SPAI (official weights, study)"
ROGER_STUDY_MODEL = "ROGER (study fused model)"


@dataclass(frozen=True)
class StudyCondition:
    id: str  # stable condition id stored in the DB
    family: str
    spai_dir: str  # folder of SPAI prediction CSVs
    roger_dir: str  # folder of the fused model's CSVs under combi-model/
    params: dict
    description: str


STUDY_CONDITIONS = (
    StudyCondition(ORIGINAL, "identity", "inference", "eval_splitmlp_all", {}, "unmodified images"),
    StudyCondition(
        "instagram-filter",
        "instagram-filter",
        "filter_inference",
        "eval_splitmlp_data_with_filter",
        {"filters": "pilgram2, 40 filters, one at random per image", "jpeg_quality": 75},
        "random Instagram-style filter, saved as JPEG q75 (study recipe)",
    ),
    StudyCondition(
        "meme",
        "meme",
        "meme_inference",
        "eval_splitmlp_meme_simulation",
        {"caption_corpus": "Genesis (KJV)", "font_height_frac": [0.05, 0.10], "format": "png"},
        "top/bottom caption drawn on the image (study recipe)",
    ),
    StudyCondition(
        "screenshot",
        "screenshot",
        "ss_inference",
        "eval_splitmlp_screenshot",
        {"post_width_px": 375, "renderer": "Instagram-like post"},
        "image shown in a simulated Instagram post, screenshotted (study recipe)",
    ),
    StudyCondition(
        "super-resolution/bsrgan-x2",
        "super-resolution",
        "inference_sr",
        "eval_splitmlp_sr",
        {"model": "BSRGAN", "downscale": 2, "upscale": 2},
        "downscale x2 then BSRGAN x2 upscaling (study recipe)",
    ),
)
Checkpoint = Callable[["ImportReport"], None]  # called between files (see import_study)
SET_FILE = re.compile(r"^(fake|real)_([A-Za-z0-9.\-]+)\.csv$")
ROGER_FILE = re.compile(
    r"^(fake|real)_([A-Za-z0-9.\-]+)_test_embeddings(?:_SplitMLP-v1)?"
    r"_prediction_results\.csv$"
)


@dataclass
class ImportReport:
    conditions: set[str] = field(default_factory=set)
    imagesets: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    files_imported: int = 0
    runs: int = 0
    images_added: int = 0
    derived_added: int = 0
    predictions_added: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    problems: list[str] = field(default_factory=list)


def _stem(relpath: str) -> str:
    return str(PurePosixPath(relpath).with_suffix(""))


def _read_scores(path: Path, score_column: str | None) -> tuple[list[dict], str]:
    """Rows of a prediction CSV and the name of its score column."""
    if not path.is_file():
        raise FileNotFoundError(f"prediction CSV not found: {path}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = list(reader.fieldnames or [])
        if score_column is None:
            extra = [c for c in cols if c not in ("image", "class", "split")]
            if len(extra) != 1:
                raise ValueError(f"{path}: cannot tell the score column among {cols}; pass score_column")
            score_column = extra[0]
        if score_column not in cols or "class" not in cols:
            raise ValueError(f"{path}: needs columns 'class' and {score_column!r}, has {cols}")
        return list(reader), score_column


def attach_scores(
    session: Session,
    *,
    imageset: ImageSet,
    condition_id: str,
    model: Model,
    relpaths: list[str],
    scores: list[float | None],
    source: str,
    report: ImportReport,
    root: Path | None = None,
    owner: str | None = None,
) -> list[int]:
    """Store one file's scores as the run (model, set, condition; a new run is ``owner``'s);
    return image ids by row.

    Images are matched by exact path, then by path without extension; unmatched rows become
    new images (with a derived-image row when the condition is not the original).
    """
    rows = session.execute(select(Image.relpath, Image.id).where(Image.imageset_id == imageset.id))
    by_path = {p: i for p, i in rows}
    by_stem = {_stem(p): i for p, i in by_path.items()}
    new_images = []
    for rel in relpaths:
        if rel not in by_path and _stem(rel) not in by_stem:
            facts, has_file = None, False
            if root is not None and condition_id == ORIGINAL:
                try:
                    full = resolve_inside(root, rel)
                    if full.is_file():
                        facts, has_file = inspect_image(full), True
                except ValueError as exc:
                    report.problems.append(f"{source}: {exc}")
            new_images.append(
                {
                    "imageset_id": imageset.id,
                    "relpath": rel,
                    "has_file": has_file,
                    "sha256": facts.sha256 if facts else None,
                    "width": facts.width if facts else None,
                    "height": facts.height if facts else None,
                    "format": facts.format if facts else None,
                    "error": facts.error if facts else None,
                }
            )
            by_stem[_stem(rel)] = -1  # placeholder until the id is known
    report.images_added += insert_ignore(session, Image.__table__, new_images)
    if new_images:
        rows = session.execute(select(Image.relpath, Image.id).where(Image.imageset_id == imageset.id))
        by_path = {p: i for p, i in rows}
        by_stem = {_stem(p): i for p, i in by_path.items()}
    image_ids = [by_path.get(rel) or by_stem[_stem(rel)] for rel in relpaths]
    if condition_id != ORIGINAL:
        derived = [
            {
                "image_id": iid,
                "condition_id": condition_id,
                "path": rel,
                "params": {"source": source},
                "seed": None,
                "has_file": False,
            }
            for iid, rel in zip(image_ids, relpaths)
        ]
        report.derived_added += insert_ignore(session, DerivedImage.__table__, derived)
    run = get_or_create_run(
        session, model.id, imageset.id, condition_id, status="imported", settings={"source": source}, owner=owner
    )
    seen: set[int] = set()
    preds = []
    for row, (iid, score) in enumerate(zip(image_ids, scores), start=1):
        if iid in seen:
            report.problems.append(f"{source}: row {row} repeats an image; kept the first")
            continue
        seen.add(iid)
        preds.append(
            {
                "run_id": run.id,
                "image_id": iid,
                "score": score,
                "error": None if score is not None else "no score in the file",
            }
        )
    report.predictions_added += bulk_insert_predictions(session, preds)
    report.runs += 1
    report.files_imported += 1
    report.imagesets.add(imageset.name)
    report.conditions.add(condition_id)
    report.models.add(model.name)
    return image_ids


def known_condition_ids(session: Session) -> set[str]:
    """Registered conditions, the study's conditions and those already in the store."""
    from robustness.registry import CONDITIONS

    stored = session.scalars(select(Condition.id))
    return set(CONDITIONS) | {c.id for c in STUDY_CONDITIONS} | set(stored)


def check_condition_id(session: Session, condition_id: str) -> None:
    """ValueError naming the closest known ids when ``condition_id`` is unknown (a typo would
    otherwise create a new condition)."""
    known = known_condition_ids(session)
    if condition_id not in known:
        raise ValueError(
            f"unknown condition {condition_id!r}"
            f"{closest(condition_id, known, listing='python -m robustness list')}"
            f"; to create it anyway pass --new-condition"
        )


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _study_files(cond_dir: Path, report: ImportReport) -> list[Path]:
    """The condition folder's set files: top level, plus sub-folder files that are not
    byte-identical copies of a top-level file."""
    top = sorted(p for p in cond_dir.glob("*.csv") if SET_FILE.match(p.name))
    files = list(top)
    for sub in sorted(p for p in cond_dir.rglob("*.csv") if p.parent != cond_dir):
        if not SET_FILE.match(sub.name):
            report.skipped.append((str(sub), "not a fake_<set>.csv / real_<set>.csv file"))
            continue
        twin = cond_dir / sub.name
        if twin.is_file() and filecmp.cmp(twin, sub, shallow=False):
            report.skipped.append((str(sub), f"byte-identical to {twin.name}"))
            continue
        files.append(sub)
    return files


def import_study(
    session: Session,
    folder: str | Path | None = None,
    *,
    checkpoint: Checkpoint | None = None,
    owner: str | None = None,
) -> ImportReport:
    """Import a study folder laid out like the robustness study (default: the shipped copy);
    the sets, models and runs it creates are ``owner``'s.

    ``checkpoint(report)`` is called after each file's run (a worker commits there and checks
    for a cancel; an import stopped there resumes, rows already imported are kept)."""
    root = Path(folder) if folder is not None else STUDY_DIR
    if not root.is_dir():
        raise FileNotFoundError(f"study folder not found: {root}")
    if not any((root / c.spai_dir).is_dir() for c in STUDY_CONDITIONS):
        raise ValueError(
            f"{root} is not a study folder: it has none of the condition folders "
            f"{', '.join(c.spai_dir + '/' for c in STUDY_CONDITIONS)}"
        )
    report = ImportReport()
    spai = get_or_create_model(
        session,
        SPAI_STUDY_MODEL,
        origin=IMPORTED,
        owner=owner,
        config={"weights": "official SPAI weights", "source": str(root.name)},
    )
    roger = get_or_create_model(
        session,
        ROGER_STUDY_MODEL,
        origin=IMPORTED,
        owner=owner,
        config={"fused": "SPAI + SplitMLP-v1", "source": str(root.name)},
    )
    for cond in STUDY_CONDITIONS:
        cond_dir = root / cond.spai_dir
        if not cond_dir.is_dir():
            report.skipped.append((str(cond_dir), "condition folder absent"))
            continue
        get_or_create_condition(session, cond.id, family=cond.family, params=cond.params, description=cond.description)
        image_ids_by_set: dict[str, list[int]] = {}
        for path in _study_files(cond_dir, report):
            kind, name = SET_FILE.match(path.name).groups()
            records, col = _read_scores(path, "spai")
            labels = {r["class"] for r in records}
            if labels != {"1" if kind == "fake" else "0"}:
                report.problems.append(
                    f"{path}: class column {sorted(labels)} contradicts the {kind}_ prefix; file skipped"
                )
                continue
            imageset = ensure_imageset(
                session, name, kind=kind, root=None, origin=STUDY_ORIGIN, generator=name, owner=owner
            )
            image_ids_by_set[name] = attach_scores(
                session,
                imageset=imageset,
                condition_id=cond.id,
                model=spai,
                relpaths=[r["image"] for r in records],
                scores=[_float_or_none(r[col]) for r in records],
                source=str(path.relative_to(root)),
                report=report,
                owner=owner,
            )
            if checkpoint is not None:
                checkpoint(report)
        _import_roger(session, root, cond, roger, image_ids_by_set, report, owner)
        if checkpoint is not None:
            checkpoint(report)
    ignored = root / "combi-model" / "eval_results"
    if ignored.is_dir():
        report.skipped.append((str(ignored), "early superseded ROGER run, not imported"))
    return report


def _import_roger(
    session: Session,
    root: Path,
    cond: StudyCondition,
    roger: Model,
    image_ids_by_set: dict[str, list[int]],
    report: ImportReport,
    owner: str | None,
) -> None:
    folder = root / "combi-model" / cond.roger_dir
    if not folder.is_dir():
        report.skipped.append((str(folder), "fused-model folder absent"))
        return
    for path in sorted(folder.glob("*.csv")):
        m = ROGER_FILE.match(path.name)
        if not m:
            report.skipped.append((str(path), "not a <kind>_<set>_..._prediction_results.csv"))
            continue
        kind, name = m.groups()
        ids = image_ids_by_set.get(name)
        if ids is None:
            report.problems.append(f"{path}: no SPAI file for set {name!r}; skipped")
            continue
        records, _ = _read_scores(path, "spai")
        if len(records) != len(ids):
            report.problems.append(
                f"{path}: {len(records)} rows but the SPAI file has {len(ids)}; rows cannot be paired, skipped"
            )
            continue
        imageset = session.scalars(select(ImageSet).where(ImageSet.name == name)).one()
        run = get_or_create_run(
            session,
            roger.id,
            imageset.id,
            cond.id,
            status="imported",
            settings={"source": str(path.relative_to(root)), "paired_by": "row order with the SPAI file"},
            owner=owner,
        )
        preds = [
            {
                "run_id": run.id,
                "image_id": iid,
                "score": _float_or_none(r["spai"]),
                "error": None if _float_or_none(r["spai"]) is not None else "no score",
            }
            for iid, r in zip(ids, records)
        ]
        report.predictions_added += bulk_insert_predictions(session, preds)
        report.runs += 1
        report.files_imported += 1
        report.models.add(roger.name)


def import_csv(
    session: Session,
    csv_path: str | Path,
    *,
    model_name: str,
    condition_id: str = ORIGINAL,
    imageset: str | None = None,
    root: str | Path | None = None,
    score_column: str | None = None,
    model_origin: str = IMPORTED,
    new_condition: bool = False,
    checkpoint: Checkpoint | None = None,
    owner: str | None = None,
) -> ImportReport:
    """Import an official ``infer`` output CSV (``image,class,split,<tag>``) as a run (new
    rows are ``owner``'s).

    The image set is ``imageset`` (default: the file's stem); a file mixing both classes is
    split into ``<name>-real`` and ``<name>-fake``. With ``root``, images whose file exists
    there are hashed and marked available. ``condition_id`` must be a registered condition,
    a study condition or one already in the store, unless ``new_condition``.
    """
    path = Path(csv_path)
    records, col = _read_scores(path, score_column)
    if not new_condition:
        check_condition_id(session, condition_id)
    report = ImportReport()
    model = get_or_create_model(session, model_name, origin=model_origin, owner=owner)
    get_or_create_condition(session, condition_id)
    root_path = Path(root).resolve() if root is not None else None
    base = imageset or path.stem
    groups: dict[str, list[dict]] = {"real": [], "fake": []}
    for i, r in enumerate(records, start=1):
        label = (r.get("class") or "").strip()
        if label not in ("0", "1"):
            report.problems.append(f"{path}: row {i}: class must be 0 or 1, got {label!r}")
            continue
        groups["fake" if label == "1" else "real"].append(r)
    kinds = [k for k, rows in groups.items() if rows]
    for kind in kinds:
        name = base if len(kinds) == 1 else f"{base}-{kind}"
        iset = ensure_imageset(
            session,
            name,
            kind=kind,
            root=str(root_path) if root_path else None,
            origin=f"csv:{path.name}",
            generator=name,
            owner=owner,
        )
        attach_scores(
            session,
            imageset=iset,
            condition_id=condition_id,
            model=model,
            relpaths=[r["image"] for r in groups[kind]],
            scores=[_float_or_none(r[col]) for r in groups[kind]],
            source=str(path),
            report=report,
            root=root_path,
            owner=owner,
        )
        if checkpoint is not None:
            checkpoint(report)
    return report
