"""The ``infer`` job: score an image set under a condition with a registered model.

Three explicit steps: open the run (create or find it, mark it running); under a condition,
derive the missing condition files (``jobs.derive.derive_step``); score the images that have no
prediction yet on the job's executor (``jobs.work.ScoreTask``), writing each batch with ON
CONFLICT DO NOTHING and advancing the progress counter in the same transaction. A killed worker
loses at most the batches in flight and never duplicates a prediction; a restarted job skips
the images already scored.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from db.models import ORIGINAL, DerivedImage, Image, ImageSet, Model, Run, utcnow
from db.queries import (
    bulk_insert_predictions,
    derived_paths,
    get_or_create_run,
    images_without_prediction,
)
from db.session import session_scope
from jobs.context import JobContext
from jobs.derive import derive_step, ensure_condition_row
from jobs.executors import get_executor
from jobs.files import NO_FILE_ERROR, image_file, resolve_stored
from jobs.params import InferParams
from jobs.registry import register_handler
from jobs.work import Scored, ScoreItem, ScoreTask
from spai.weights import model_file


@dataclass(frozen=True)
class InferRun:
    """An infer job's run row and what scoring it needs."""

    run_id: int
    imageset: ImageSet  # detached
    model_name: str
    task: ScoreTask


def open_run(ctx: JobContext, p: InferParams) -> InferRun:
    """Create (or find) the job's run and mark it running."""
    with session_scope(ctx.url) as s:
        model = s.get(Model, p.model_id)
        iset = s.get(ImageSet, p.imageset_id)
        if model is None or iset is None:
            raise KeyError(f"model {p.model_id} or image set {p.imageset_id} does not exist")
        if model.path is None:
            raise ValueError(f"model {model.name!r} has no weights file")
        ensure_condition_row(s, p.condition_id)
        run = get_or_create_run(
            s,
            model.id,
            iset.id,
            p.condition_id,
            owner=ctx.owner,
            settings={"batch_size": p.batch_size, "job_id": ctx.job_id},
        )
        s.execute(
            update(Run)
            .where(Run.id == run.id)
            .values(status="running", started_at=func.coalesce(Run.started_at, utcnow()))
        )
        task = ScoreTask(model_file(model.path, (model.config or {}).get("cfg_path")), p.device, model.sha256)
        return InferRun(run.id, iset, model.name, task)


def source_of(
    iset: ImageSet, im: Image, condition_id: str, derived: dict[int, DerivedImage]
) -> tuple[Path | None, str | None]:
    """The file to score for the image under the condition, or the reason there is none."""
    if condition_id == ORIGINAL:
        return image_file(iset, im)
    d = derived.get(im.id)
    if d is None:
        return None, f"no derived file under {condition_id!r}"
    if not d.has_file or d.error:
        return None, d.error or NO_FILE_ERROR
    return resolve_stored(d.path), None


def score_step(ctx: JobContext, r: InferRun, p: InferParams) -> None:
    """Score the run's images without a prediction; images without a file to score get an
    error row at once."""
    with session_scope(ctx.url) as s:
        total = s.scalar(select(func.count()).where(Image.imageset_id == r.imageset.id)) or 0
        todo = images_without_prediction(s, r.run_id, r.imageset.id)
        derived = derived_paths(s, r.imageset.id, p.condition_id) if p.condition_id != ORIGINAL else {}
        ctx.log(
            f"score: run {r.run_id}: {len(todo)} images to score ({total - len(todo)} "
            f"already done) with {r.model_name!r} under {p.condition_id!r}",
            session=s,
        )
        ctx.progress(total - len(todo), total, session=s)
    items, missing = [], []
    for im in todo:
        path, error = source_of(r.imageset, im, p.condition_id, derived)
        if error is None:
            items.append(ScoreItem(im.id, str(path)))
        else:
            missing.append(Scored(im.id, None, error=error))
    if missing:
        write_scored(ctx, r, missing)
    batches = get_executor(p).map(r.task, items, batch_size=p.batch_size, should_stop=ctx.should_stop, log=ctx.log)
    with closing(batches):  # a write that raises (job lost) stops the executor's work at once
        for results in batches:
            write_scored(ctx, r, results)
    ctx.check()  # stopped early: cancel, lost or stopping, never a silent partial success


def write_scored(ctx: JobContext, r: InferRun, results: list[Scored]) -> None:
    """Insert a batch of predictions (existing ones kept) and advance the progress by the
    rows actually added, in the same transaction."""
    with ctx.owned_session() as s:
        added = bulk_insert_predictions(s, [x.row(r.run_id) for x in results])
        ctx.advance(added, session=s)


def close_run(ctx: JobContext, r: InferRun) -> dict[str, Any]:
    """Mark the run done (unless the job must stop) and return the job result."""
    ctx.check()
    with session_scope(ctx.url) as s:
        s.execute(update(Run).where(Run.id == r.run_id).values(status="done", finished_at=utcnow()))
    return {"run_id": r.run_id, "predictions": ctx.done, "images": ctx.total}


def run_infer(ctx: JobContext) -> dict[str, Any]:
    """Open the run, derive the condition's files (under a condition), score, close."""
    p: InferParams = ctx.params
    r = open_run(ctx, p)
    if p.condition_id != ORIGINAL:
        derive_step(ctx, p.imageset_id, p.condition_id, p)
    score_step(ctx, r, p)
    return close_run(ctx, r)


def mark_run(ctx: JobContext, status: str) -> None:
    """After a cancel or a failure: the job's run (if it was opened) says so."""
    p: InferParams = ctx.params
    with session_scope(ctx.url) as s:
        s.execute(
            update(Run)
            .where(Run.model_id == p.model_id, Run.imageset_id == p.imageset_id, Run.condition_id == p.condition_id)
            .values(status=status)
        )


register_handler("infer", run_infer, params=InferParams, on_stop=mark_run)
