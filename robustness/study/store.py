"""What a study needs from the prediction store: the jobs still to do, and the scores once done.

Every function takes a session and never commits (``db/session.py`` owns the unit of work).
A job is planned only for work the store lacks: an image set not registered yet, a score file
not imported yet, a (set, condition) without derived files, a (model, set, condition) run with
images still unscored. A job already queued or running with the same parameters is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import jobs
from db.models import ORIGINAL, DerivedImage, Image, ImageSet, Model, Prediction, Run
from jobs.params import (
    CsvImport,
    InferParams,
    JobParams,
    MakeConditionParams,
    RegisterCsv,
    RegisterFolder,
    StudyImport,
)
from robustness.study.schema import ImageSetSpec, ModelSpec, Study

__all__ = [
    "JobSpec",
    "SetScores",
    "StoreConflict",
    "enqueue",
    "load_scores",
    "model_ids",
    "plan_derive",
    "plan_infer",
    "plan_register",
]


class StoreConflict(ValueError):
    """The store holds something under a study's name that is not what the study declares."""


@dataclass(frozen=True)
class JobSpec:
    params: JobParams  # the job's typed parameters (jobs.params): its kind and stored JSON
    what: str  # one line for the progress display

    @property
    def kind(self) -> str:
        return self.params.job_kind


@dataclass(frozen=True)
class SetScores:
    """Scored images of one image set under one condition, by image id (ascending)."""

    kind: str  # real | fake
    image_ids: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32, as the study's protocol reads them


def _set_row(session: Session, name: str) -> ImageSet | None:
    return session.scalars(select(ImageSet).where(ImageSet.name == name)).one_or_none()


def _register_specs(spec: ImageSetSpec) -> list[JobSpec]:
    gen = spec.generator
    if spec.folder is not None:  # kind None: <name>-real and <name>-fake from label folders
        return [
            JobSpec(
                RegisterFolder(folder=str(spec.folder), name=spec.name, kind=spec.kind, generator=gen),
                f"register {spec.name}",
            )
        ]
    return [
        JobSpec(
            RegisterCsv(csv_path=str(spec.csv), root=str(spec.root), name=spec.name, generator=gen, split=spec.split),
            f"register {spec.name}",
        )
    ]


def plan_register(session: Session, study: Study) -> list[JobSpec]:
    """Registration and import jobs for image sets and score files not in the store yet."""
    out: list[JobSpec] = []
    for spec in study.image_sets:
        names = spec.store_names()
        rows = {n: _set_row(session, n) for n in names}
        for n, row in rows.items():
            if row is not None and row.kind != names[n]:
                raise StoreConflict(f"image set {n!r} is stored as {row.kind}, the study declares it {names[n]}")
        if all(row is not None for row in rows.values()):
            continue  # registered before: nothing stored is redone
        out += _register_specs(spec)
    for m in study.models:
        if m.study is not None and not _study_imported(session, m, study):
            out.append(JobSpec(StudyImport(folder=str(m.study)), f"import {m.study.name}"))
        for f in m.score_files:
            if not _csv_imported(session, m.name, f.csv):
                out.append(
                    JobSpec(
                        CsvImport(
                            csv_path=str(f.csv),
                            model_name=m.name,
                            condition_id=f.condition,
                            imageset=f.imageset,
                            score_column=f.score_column,
                        ),
                        f"import {f.csv.name} as {m.name}",
                    )
                )
    return _unique(out)


def _study_imported(session: Session, m: ModelSpec, study: Study) -> bool:
    """The study folder counts as imported when its model has runs under every condition."""
    have = set(
        session.scalars(select(Run.condition_id).join(Model, Model.id == Run.model_id).where(Model.name == m.name))
    )
    return set(study.condition_ids) <= have


def _csv_imported(session: Session, model_name: str, csv_path: Path) -> bool:
    runs = session.scalars(select(Run).join(Model, Model.id == Run.model_id).where(Model.name == model_name))
    return any((r.settings or {}).get("source") == str(csv_path) for r in runs)


def model_ids(session: Session, study: Study) -> dict[str, int]:
    """Store ids of the study's weights models, recording (and hashing) new ones."""
    from db.imagesets import sha256_file
    from db.model_rows import register_model
    from spai.weights import origin_of

    out = {}
    for m in study.models:
        if m.imported:
            continue
        row = session.scalars(select(Model).where(Model.name == m.name)).one_or_none()
        if row is not None:
            digest = sha256_file(m.weights)
            if row.sha256 != digest:
                raise StoreConflict(
                    f"a model named {m.name!r} is already stored with other "
                    f"weights ({row.path}, sha256 {str(row.sha256)[:12]}...); "
                    f"give this one another name in the study file"
                )
            out[m.name] = row.id
            continue
        out[m.name] = register_model(session, m.weights, name=m.name, cfg=m.config, origin=origin_of(m.weights))
    return out


def _declared_sets(session: Session, study: Study) -> list[ImageSet]:
    rows = []
    for spec in study.image_sets:
        for n in spec.store_names():
            row = _set_row(session, n)
            if row is None:
                raise StoreConflict(f"image set {n!r} is not in the store after registration")
            rows.append(row)
    return rows


def plan_derive(session: Session, study: Study) -> list[JobSpec]:
    """make-condition jobs for declared sets lacking derived files under a condition."""
    if all(m.imported for m in study.models):
        return []
    out = []
    for iset in _declared_sets(session, study):
        n = session.scalar(select(func.count()).where(Image.imageset_id == iset.id)) or 0
        for cid in study.condition_ids:
            if cid == ORIGINAL:
                continue
            have = (
                session.scalar(
                    select(func.count())
                    .select_from(DerivedImage)
                    .join(Image, Image.id == DerivedImage.image_id)
                    .where(Image.imageset_id == iset.id, DerivedImage.condition_id == cid)
                )
                or 0
            )
            if have < n:
                out.append(
                    JobSpec(
                        MakeConditionParams(imageset_id=iset.id, condition_id=cid), f"derive {iset.name} under {cid}"
                    )
                )
    return out


def plan_infer(session: Session, study: Study, ids: dict[str, int]) -> list[JobSpec]:
    """infer jobs for every (weights model, declared set, condition) with unscored images."""
    out = []
    sets = _declared_sets(session, study) if ids else []
    for name, mid in ids.items():
        for iset in sets:
            n = session.scalar(select(func.count()).where(Image.imageset_id == iset.id)) or 0
            for cid in study.condition_ids:
                run = session.scalars(
                    select(Run).where(Run.model_id == mid, Run.imageset_id == iset.id, Run.condition_id == cid)
                ).one_or_none()
                done = (
                    0 if run is None else session.scalar(select(func.count()).where(Prediction.run_id == run.id)) or 0
                )
                if done < n or run is None or run.status != "done":
                    out.append(
                        JobSpec(
                            InferParams(
                                model_id=mid,
                                imageset_id=iset.id,
                                condition_id=cid,
                                batch_size=study.batch_size,
                                device=study.device,
                            ),
                            f"score {iset.name} under {cid} with {name}",
                        )
                    )
    return out


def _unique(specs: list[JobSpec]) -> list[JobSpec]:
    seen, out = set(), []
    for s in specs:
        if s.params not in seen:
            seen.add(s.params)
            out.append(s)
    return out


def enqueue(session: Session, spec: JobSpec) -> int:
    """Queue the job, or return the id of the same job already queued or running
    (``db.jobs.enqueue``)."""
    return jobs.enqueue(session, spec.kind, spec.params.to_dict())


def load_scores(session: Session, model_name: str, condition_ids: list[str]) -> dict[tuple[str, str], SetScores]:
    """Every scored prediction of the model under the conditions: (condition, set) -> scores."""
    from db.queries import study_frame

    model = session.scalars(select(Model).where(Model.name == model_name)).one_or_none()
    if model is None:
        raise StoreConflict(f"model {model_name!r} is not in the store")
    frame = study_frame(session, model.id, condition_ids)
    return {
        (str(c), str(name)): SetScores(
            str(g["kind"].iloc[0]), g["image_id"].to_numpy(np.int64), g["score"].to_numpy(np.float64).astype(np.float32)
        )
        for (c, name), g in frame.groupby(["condition", "imageset"], observed=True, sort=True)
    }


def condition_seeds(
    session: Session, set_names: list[str], condition_ids: list[str]
) -> dict[str, tuple[int, str | None]]:
    """Per condition: how many derived images of the sets carry a seed, and a sha256 over
    their sorted seeds (None when none has one, e.g. imported scores)."""
    import hashlib

    out = {}
    for cid in condition_ids:
        seeds = sorted(
            session.scalars(
                select(DerivedImage.seed)
                .join(Image, Image.id == DerivedImage.image_id)
                .join(ImageSet, ImageSet.id == Image.imageset_id)
                .where(ImageSet.name.in_(set_names), DerivedImage.condition_id == cid, DerivedImage.seed.is_not(None))
            )
        )
        digest = hashlib.sha256(",".join(map(str, seeds)).encode()).hexdigest() if seeds else None
        out[cid] = (len(seeds), digest)
    return out


def model_rows(session: Session, names: list[str]) -> dict[str, Model]:
    """The stored model rows by name (absent names are left out)."""
    return {m.name: m for m in session.scalars(select(Model).where(Model.name.in_(names)))}
