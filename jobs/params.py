"""Typed parameters of every job kind: frozen dataclasses, parsed and checked in one place.

A job row keeps its parameters as JSON (``db.jobs``). ``dashboard.jobqueue`` builds them from
these records (``to_dict()``), and the worker turns a row's JSON back into one with
``parse(kind, raw)`` before the handler runs, so a handler reads attributes, never string keys,
and a malformed job fails at once with a message naming the parameter.

Example::

    >>> parse("infer", {"model_id": 1, "imageset_id": 2}).condition_id
    'original'
    >>> parse("infer", {"model_id": "1", "imageset_id": 2})
    Traceback (most recent call last):
    ...
    jobs.params.ParamError: infer job: model_id must be an integer, got '1'
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from db.models import ORIGINAL
from jobs.executors import check_executor


class ParamError(ValueError):
    """A job's parameters are missing, unknown or of the wrong type."""


@dataclass(frozen=True, kw_only=True)
class JobParams:
    """Base of every kind's parameters: parsing from and writing to the stored JSON."""

    job_kind: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobParams:
        """The record for ``raw``; ``ParamError`` for an unknown, missing or mistyped key."""
        if not isinstance(raw, dict):
            raise ParamError(f"{cls.job_kind} job: parameters must be a mapping, got {raw!r}")
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        unknown = sorted(set(raw) - names - set(cls._fixed()))
        if unknown:
            raise ParamError(
                f"{cls.job_kind} job: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        values = {}
        for f in fields:
            value = raw.get(f.name)
            if value is None:
                if f.default is dataclasses.MISSING:
                    raise ParamError(f"{cls.job_kind} job: {f.name} is required")
                continue
            values[f.name] = _typed(cls.job_kind, f.name, value, hints[f.name])
        try:
            return cls(**values)
        except ValueError as exc:
            raise ParamError(f"{cls.job_kind} job: {exc}") from None

    @classmethod
    def _fixed(cls) -> dict[str, Any]:
        """Keys every stored row of the class carries with one value (an import's source)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored on the job row (optional fields left at None are left out)."""
        out = dict(self._fixed())
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not (value is None and f.default is None):
                out[f.name] = value
        return out


def _typed(kind: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the field's type (``X | None`` unwrapped; an int is a float)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint == tuple[tuple[str, float], ...]:
        return _aug_conditions(kind, name, value)
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        bool: isinstance(value, bool),
    }[hint]
    if not ok:
        what = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
        raise ParamError(f"{kind} job: {name} must be {what[hint]}, got {value!r}")
    return float(value) if hint is float else value


def _aug_conditions(kind: str, name: str, value: Any) -> tuple[tuple[str, float], ...]:
    """``[{id, p}, ...]`` (as the Train page queues them) or ``[[id, p], ...]``."""
    if not isinstance(value, (list, tuple)):
        raise ParamError(f"{kind} job: {name} must be a list of {{id, p}}, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, dict) and set(item) == {"id", "p"}:
            pair = (item["id"], item["p"])
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            pair = tuple(item)
        else:
            pair = (None, None)
        if not isinstance(pair[0], str) or isinstance(pair[1], bool) or not isinstance(pair[1], (int, float)):
            raise ParamError(
                f"{kind} job: each of {name} must be {{id: <condition id>, p: <probability>}}, got {item!r}"
            )
        out.append((pair[0], float(pair[1])))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class ExecutorParams:
    """Where a job's work items run (see ``jobs.executors``): infer and make-condition."""

    executor: str | None = None  # "local" or "ray"; None: SPAI_EXECUTOR, else local
    ray_address: str | None = None  # None: RAY_ADDRESS, else a private local Ray
    ray_actors: int | None = None  # Ray actors; None: one per GPU, else one per CPU

    def __post_init__(self) -> None:
        if self.executor is not None:
            check_executor(self.executor)
        if self.ray_actors is not None and self.ray_actors < 1:
            raise ValueError(f"ray_actors must be a positive integer, got {self.ray_actors!r}")


@dataclass(frozen=True, kw_only=True)
class InferParams(ExecutorParams, JobParams):
    """Score an image set under a condition with a registered model."""

    job_kind: ClassVar[str] = "infer"
    model_id: int
    imageset_id: int
    condition_id: str = ORIGINAL
    batch_size: int = 16  # images per executor batch and per stored batch
    device: str = "auto"  # "auto", "cpu", "cuda"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass(frozen=True, kw_only=True)
class MakeConditionParams(ExecutorParams, JobParams):
    """Write the derived file of every image of a set under a condition."""

    job_kind: ClassVar[str] = "make-condition"
    imageset_id: int
    condition_id: str


@dataclass(frozen=True, kw_only=True)
class TrainParams(JobParams):
    """Train or fine-tune a model (``spai.training.train``); relative paths are taken from the
    repository root."""

    job_kind: ClassVar[str] = "train"
    data_path: str  # a training CSV
    cfg: str | None = None  # YAML; None: configs/demo.yaml
    csv_root_dir: str | None = None
    output: str | None = None  # None: data/train/<tag or job id>
    tag: str | None = None
    pretrained: str | None = None
    resume: str | None = None
    init_from: str | None = None  # a model's weights to start from
    epochs: int | None = None  # overrides TRAIN.EPOCHS
    batch_size: int | None = None  # overrides DATA.BATCH_SIZE
    learning_rate: float | None = None  # overrides TRAIN.BASE_LR
    aug_conditions: tuple[tuple[str, float], ...] | None = None  # AUG.CONDITIONS as (id, p)
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.aug_conditions is not None:  # stored as the Train page queues it
            out["aug_conditions"] = [{"id": c, "p": p} for c, p in self.aug_conditions]
        return out


@dataclass(frozen=True, kw_only=True)
class ImportParams(JobParams):
    """Base of the ``import`` kind's variants, told apart by their ``source``."""

    job_kind: ClassVar[str] = "import"
    source: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobParams:
        if cls is not ImportParams:
            return super().from_dict(raw)
        variant = IMPORT_SOURCES.get(raw.get("source")) if isinstance(raw, dict) else None
        if variant is None:
            raise ParamError(
                f"import job: source must be "
                f"{', '.join(repr(s) for s in list(IMPORT_SOURCES)[:-1])} or "
                f"{list(IMPORT_SOURCES)[-1]!r}, got "
                f"{raw.get('source') if isinstance(raw, dict) else raw!r}"
            )
        return variant.from_dict(raw)

    @classmethod
    def _fixed(cls) -> dict[str, Any]:
        return {"source": cls.source}


@dataclass(frozen=True, kw_only=True)
class StudyImport(ImportParams):
    """Import a study folder (None: the shipped robustness study)."""

    source: ClassVar[str] = "study"
    folder: str | None = None


@dataclass(frozen=True, kw_only=True)
class CsvImport(ImportParams):
    """Import an official ``infer`` output CSV as one run of scores."""

    source: ClassVar[str] = "csv"
    csv_path: str
    model_name: str
    condition_id: str = ORIGINAL
    imageset: str | None = None
    root: str | None = None
    score_column: str | None = None


@dataclass(frozen=True, kw_only=True)
class RegisterFolder(ImportParams):
    """Register a folder as an image set of label ``kind``, or (``kind`` None) as
    ``<name>-real`` and ``<name>-fake`` from its label subfolders."""

    source: ClassVar[str] = "register-folder"
    folder: str
    name: str
    kind: str | None = None  # "real" or "fake"
    generator: str | None = None


@dataclass(frozen=True, kw_only=True)
class RegisterCsv(ImportParams):
    """Register an official-format CSV (image,class[,split]) under a root folder."""

    source: ClassVar[str] = "register-csv"
    csv_path: str
    root: str
    name: str
    generator: str | None = None
    split: str | None = None


IMPORT_SOURCES: dict[str, type[ImportParams]] = {
    c.source: c for c in (StudyImport, CsvImport, RegisterFolder, RegisterCsv)
}
KINDS: dict[str, type[JobParams]] = {
    c.job_kind: c for c in (InferParams, MakeConditionParams, TrainParams, ImportParams)
}


def parse(kind: str, raw: dict[str, Any]) -> JobParams:
    """The typed parameters of a job of ``kind`` (one of ``KINDS``)."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ParamError(
            f"no parameters are declared for job kind {kind!r}; known: {', '.join(sorted(KINDS))}"
        ) from None
    return cls.from_dict(raw)
