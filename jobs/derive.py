"""The derivation step: write the missing derived files of an image set under a condition.

It is a job kind of its own (``make-condition``) and the first, explicit step of an infer job
under a condition (``jobs.infer``). The files are written by the job's executor
(``jobs.work.DeriveTask``); their rows go to the store batch by batch, existing ones kept.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import DerivedImage, Image, ImageSet, utcnow
from db.queries import derived_paths, get_or_create_condition, insert_ignore
from db.session import session_scope
from jobs.context import JobContext
from jobs.executors import get_executor
from jobs.files import derived_stem, image_file, stored
from jobs.params import ExecutorParams, MakeConditionParams
from jobs.registry import register_handler
from jobs.work import DeriveItem, Derived, DeriveTask, derive_one

DERIVE_BATCH = 16  # derived files per executor batch and per transaction


def ensure_condition_row(session: Session, condition_id: str) -> None:
    """The condition's row, from ``robustness.registry`` (``original``: the identity)."""
    from robustness.registry import get

    cond = get(condition_id)
    get_or_create_condition(session, condition_id, family=cond.family, params=cond.params, description=cond.description)


def derive_items(iset: ImageSet, images: list[Image], condition_id: str) -> list[DeriveItem]:
    """What the executor needs to derive each image (its file checked inside the set)."""
    items = []
    for im in images:
        src, error = image_file(iset, im)
        try:
            stem = str(derived_stem(iset.id, iset.name, condition_id, im.relpath))
        except ValueError as exc:
            src, error, stem = None, str(exc), ""
        key = f"sha256:{im.sha256}" if im.sha256 else f"{iset.name}/{im.relpath}"
        items.append(DeriveItem(im.id, str(src) if src else None, stem, key, error))
    return items


def derived_row(d: Derived, condition_id: str) -> dict[str, Any]:
    """The ``derived_images`` row of a result (the same keys in every row)."""
    return {
        "image_id": d.image_id,
        "condition_id": condition_id,
        "params": d.params,
        "seed": d.seed,
        "width": d.width,
        "height": d.height,
        "path": stored(d.path) if d.path else "",
        "has_file": d.path is not None,
        "error": d.error,
        "created_at": utcnow(),
    }


def derive_step(ctx: JobContext, imageset_id: int, condition_id: str, executor: ExecutorParams) -> dict[str, int]:
    """Derive every image of the set that has no derived file under the condition; returns
    counts (derived, derive_errors, images). Resumable: files already recorded are skipped."""
    with session_scope(ctx.url) as s:
        ensure_condition_row(s, condition_id)
        iset = s.get(ImageSet, imageset_id)
        if iset is None:
            raise KeyError(f"no image set with id {imageset_id}")
        have = derived_paths(s, imageset_id, condition_id)
        images = list(s.scalars(select(Image).where(Image.imageset_id == imageset_id).order_by(Image.id)))
        missing = [im for im in images if im.id not in have]
        ctx.log(f"derive: {len(missing)} of {len(images)} images of {iset.name!r} under {condition_id!r}", session=s)
        ctx.progress(len(images) - len(missing), len(images), session=s)
    todo = derive_items(iset, missing, condition_id)
    counts = {"derived": 0, "derive_errors": 0, "images": len(images)}
    unreadable = [derive_one(it, condition_id) for it in todo if it.src is None]
    if unreadable:
        write_derived(ctx, unreadable, condition_id, counts)
    readable = [it for it in todo if it.src is not None]
    batches = get_executor(executor).map(
        DeriveTask(condition_id), readable, batch_size=DERIVE_BATCH, should_stop=ctx.should_stop, log=ctx.log
    )
    with closing(batches):  # a write that raises (job lost) stops the executor's work at once
        for results in batches:
            write_derived(ctx, results, condition_id, counts)
    ctx.check()  # stopped early: cancel, lost or stopping, never a silent partial success
    return counts


def write_derived(ctx: JobContext, results: list[Derived], condition_id: str, counts: dict[str, int]) -> None:
    """Record a batch of results (existing rows kept) and advance the progress with them."""
    with ctx.owned_session() as s:
        insert_ignore(s, DerivedImage.__table__, [derived_row(d, condition_id) for d in results])
        ctx.advance(len(results), session=s)
    failed = sum(d.error is not None for d in results)
    counts["derive_errors"] += failed
    counts["derived"] += len(results) - failed


def run_make_condition(ctx: JobContext) -> dict[str, int]:
    p: MakeConditionParams = ctx.params
    return derive_step(ctx, p.imageset_id, p.condition_id, p)


register_handler("make-condition", run_make_condition, params=MakeConditionParams)
