"""How far a new user has come, read from the store (the landing page's first-run guide)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from db.importers import STUDY_ORIGIN
from db.models import ImageSet, Job, Model, Prediction, Run

USER_SET_ORIGINS = ("folder", "csv")  # sets registered from the user's own files


@dataclass(frozen=True)
class FirstRun:
    scored: bool  # a model with a weights file has scored something
    study: bool  # the robustness study is imported
    sets: bool  # the user registered an image set of their own
    job: bool  # an inference job finished
    study_queued: bool = False  # a study import is queued or running

    @property
    def done(self) -> bool:
        return self.scored and self.study and self.sets and self.job


def first_run(session: Session) -> FirstRun:
    """Which of the guide's steps the store shows as done."""
    scored = session.scalar(
        select(
            exists().where(
                Prediction.run_id == Run.id,
                Run.model_id == Model.id,
                Model.path.is_not(None),
                Prediction.score.is_not(None),
            )
        )
    )
    study = session.scalar(select(exists().where(ImageSet.origin == STUDY_ORIGIN)))
    sets = session.scalar(select(exists().where(ImageSet.origin.in_(USER_SET_ORIGINS))))
    job = session.scalar(select(exists().where(Job.kind == "infer", Job.status == "done")))
    pending = session.scalars(select(Job.params).where(Job.kind == "import", Job.status.in_(("queued", "running"))))
    queued = any((p or {}).get("source") == "study" for p in pending)
    return FirstRun(bool(scored), bool(study), bool(sets), bool(job), queued)
