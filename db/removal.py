"""Delete jobs, image sets, runs and models, as their owner or an administrator (``db.owners``).

What goes with each (the schema's ON DELETE CASCADE): an image set takes its images, their
derived-image rows and predictions, and the runs on it; a run takes its predictions; a model
takes its runs. Files on disk (image folders, derived files, weights) are left alone. Refused,
with the reason:

- a row the actor neither owns nor administers (``NotAllowed``);
- an image set or model whose runs belong to someone else, unless the actor is an
  administrator (deleting it would delete their results) (``NotAllowed``);
- a row a queued or running job still uses, and a job that has not finished (``ValueError``).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.jobs import ACTIVE_STATUSES
from db.models import ImageSet, Job, Model, Run
from db.owners import Actor, NotAllowed, require_owner

__all__ = ["delete_imageset", "delete_job", "delete_model", "delete_run"]


def _row(session: Session, entity: type, row_id: int, what: str):
    row = session.get(entity, row_id, with_for_update=True)
    if row is None:
        raise KeyError(f"no {what} with id {row_id}")
    return row


def _active_jobs_using(session: Session, **params: object) -> list[int]:
    """Queued or running jobs whose params hold every ``key=value`` given."""
    rows = session.execute(select(Job.id, Job.params).where(Job.status.in_(ACTIVE_STATUSES)))
    return [i for i, p in rows if all(str((p or {}).get(k)) == str(v) for k, v in params.items())]


def _refuse_if_used(session: Session, what: str, **params: object) -> None:
    if used := _active_jobs_using(session, **params):
        raise ValueError(f"{what} is used by queued or running job(s) {', '.join(map(str, used))}: cancel them first")


def _refuse_others_runs(session: Session, actor: Actor, what: str, *where) -> None:
    if actor.admin:
        return
    others = sorted(
        {
            o or "nobody (made without sign-in)"
            for o in session.scalars(select(Run.owner).where(*where))
            if o != actor.owner
        }
    )
    if others:
        raise NotAllowed(
            f"{what} has runs of {', '.join(others)}: only an administrator may delete it with their results"
        )


def delete_job(session: Session, job_id: int, *, actor: Actor) -> None:
    """Delete a finished job (done, failed or cancelled); what it produced stays."""
    job = _row(session, Job, job_id, "job")
    require_owner(actor, job.owner, f"delete job {job_id}")
    if job.status in ACTIVE_STATUSES:
        raise ValueError(f"job {job_id} is {job.status}: cancel it first")
    session.execute(delete(Job).where(Job.id == job_id))


def delete_run(session: Session, run_id: int, *, actor: Actor) -> None:
    """Delete a run and its predictions."""
    run = _row(session, Run, run_id, "run")
    require_owner(actor, run.owner, f"delete run {run_id}")
    _refuse_if_used(
        session, f"run {run_id}", model_id=run.model_id, imageset_id=run.imageset_id, condition_id=run.condition_id
    )
    session.execute(delete(Run).where(Run.id == run_id))


def delete_imageset(session: Session, imageset_id: int, *, actor: Actor) -> None:
    """Delete an image set with its images, their predictions and the runs on it."""
    iset = _row(session, ImageSet, imageset_id, "image set")
    what = f"image set {iset.name!r}"
    require_owner(actor, iset.owner, f"delete {what}")
    _refuse_others_runs(session, actor, what, Run.imageset_id == imageset_id)
    _refuse_if_used(session, what, imageset_id=imageset_id)
    session.execute(delete(ImageSet).where(ImageSet.id == imageset_id))


def delete_model(session: Session, model_id: int, *, actor: Actor) -> None:
    """Delete a model's row with its runs (its weights file stays)."""
    model = _row(session, Model, model_id, "model")
    what = f"model {model.name!r}"
    require_owner(actor, model.owner, f"delete {what}")
    _refuse_others_runs(session, actor, what, Run.model_id == model_id)
    _refuse_if_used(session, what, model_id=model_id)
    session.execute(delete(Model).where(Model.id == model_id))
