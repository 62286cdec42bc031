"""Typed SQLAlchemy 2.0 models of the prediction store.

An image set ("coco", real) has images; a run is (model x image set x condition); predictions are
unique per (run, image). Derived images (image x condition -> file, params, seed) sit apart, and
jobs plus the worker registry drive the background worker.
"""

from __future__ import annotations

from datetime import datetime, UTC
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

IMAGESET_KINDS = ("real", "fake")
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
ORIGINAL = "original"  # the condition id of unmodified images
OWNER_LEN = 320  # an owner is a signed-in e-mail address (at most 320 characters) or subject


def utcnow() -> datetime:
    """Naive UTC timestamp (stored the same way on SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON(none_as_null=True), list[Any]: JSON(none_as_null=True)}


class ImageSet(Base):
    __tablename__ = "image_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # real | fake (label 1 = fake)
    generator: Mapped[str | None] = mapped_column(String(200))  # generator or real source
    root: Mapped[str | None] = mapped_column(Text)  # folder image paths are relative to
    origin: Mapped[str] = mapped_column(String(200))  # folder | csv | study:<name> | ...
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    owner: Mapped[str | None] = mapped_column(String(OWNER_LEN))  # see db.owners

    images: Mapped[list[Image]] = relationship(back_populates="imageset")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("imageset_id", "relpath"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    imageset_id: Mapped[int] = mapped_column(ForeignKey("image_sets.id", ondelete="CASCADE"))
    relpath: Mapped[str] = mapped_column(Text)  # relative to the set's root
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(20))
    has_file: Mapped[bool] = mapped_column(Boolean, default=True)  # False: predictions only
    error: Mapped[str | None] = mapped_column(Text)  # why the file cannot be decoded

    imageset: Mapped[ImageSet] = relationship(back_populates="images")


class Condition(Base):
    __tablename__ = "conditions"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. "jpeg/q75"
    family: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str | None] = mapped_column(Text)


class DerivedImage(Base):
    __tablename__ = "derived_images"
    __table_args__ = (UniqueConstraint("image_id", "condition_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    condition_id: Mapped[str] = mapped_column(ForeignKey("conditions.id"))
    path: Mapped[str] = mapped_column(Text)  # absolute, or relative to the repo for imports
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # parameters actually used
    seed: Mapped[int | None] = mapped_column(BigInteger)  # 63-bit seeds
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    has_file: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str | None] = mapped_column(Text)  # weights file; None for imported scores
    sha256: Mapped[str | None] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    origin: Mapped[str] = mapped_column(String(20))  # one of spai.weights.ORIGINS
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    owner: Mapped[str | None] = mapped_column(String(OWNER_LEN))


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("model_id", "imageset_id", "condition_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    imageset_id: Mapped[int] = mapped_column(ForeignKey("image_sets.id", ondelete="CASCADE"))
    condition_id: Mapped[str] = mapped_column(ForeignKey("conditions.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    owner: Mapped[str | None] = mapped_column(String(OWNER_LEN))


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("run_id", "image_id"),
        Index("ix_predictions_image_id", "image_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    score: Mapped[float | None] = mapped_column(Float)  # P(fake); None when error is set
    logit: Mapped[float | None] = mapped_column(Float)
    attention: Mapped[list[Any] | None] = mapped_column()  # head-averaged patch attention
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))  # infer | make-condition | import | train
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    traceback: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    owner: Mapped[str | None] = mapped_column(String(OWNER_LEN))


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid:random
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    current_job_id: Mapped[int | None] = mapped_column(Integer)


class Setting(Base):
    """A named value shared by every user of the store (e.g. the dashboard's default model)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
