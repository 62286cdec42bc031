"""Work items, their results and the tasks executors run (``jobs.executors``).

Pure of the store: this module imports only ``spai`` (``spai.weights`` at once, the detector
and ``robustness`` inside ``open()``), never SQLAlchemy or ``db``, so a Ray actor that unpickles a task loads the
detector and nothing else. Items and results are small frozen records; the job turns results
into rows on the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spai.weights import ModelFile

if TYPE_CHECKING:
    from spai.detector import Detector, ImageResult

_DETECTORS: dict[tuple[ModelFile, str, str | None], Detector] = {}


def detector(model: ModelFile, device: str = "auto", sha256: str | None = None) -> Detector:
    """The detector for (model file, device, sha256), loaded on first use and kept for the
    process; with ``sha256`` (the model row's) a file whose content changed is refused."""
    key = (model, device, sha256)
    if key not in _DETECTORS:
        from spai.detector import Detector

        _DETECTORS[key] = Detector.load(
            model.path, cfg=model.config, device=device, origin=model.origin, expect_sha256=sha256
        )
    return _DETECTORS[key]


# --- scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreItem:
    image_id: int
    path: str  # the file to score (an original or a derived file)


@dataclass(frozen=True)
class Scored:
    """One image's score, or why it has none; the columns of its prediction row."""

    image_id: int
    score: float | None
    logit: float | None = None
    attention: list[float] | None = None  # mean attention per patch
    error: str | None = None
    seconds: float | None = None

    @classmethod
    def of(cls, image_id: int, pred: ImageResult) -> Scored:
        return cls(image_id, pred.score, pred.logit, pred.attention_mean or None, pred.error, pred.seconds)

    def row(self, run_id: int) -> dict[str, Any]:
        """The prediction row (``db.queries.bulk_insert_predictions``)."""
        return {
            "run_id": run_id,
            "image_id": self.image_id,
            "score": self.score,
            "logit": self.logit,
            "attention": self.attention,
            "error": self.error,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class ScoreTask:
    """Score batches of ``ScoreItem`` with one model (``spai.batching.score_stream``: the
    batch's images grouped by crops, each group one backbone pass)."""

    model: ModelFile  # spai.weights' record of the weights file (path, config, origin)
    device: str = "auto"
    sha256: str | None = None  # the registered file's hash: a changed file is refused

    def open(self) -> Callable[[list[ScoreItem]], list[Scored]]:
        from spai.batching import score_stream

        det = detector(self.model, self.device, self.sha256)

        def score(items: list[ScoreItem]) -> list[Scored]:
            preds = score_stream(det, [it.path for it in items])
            return [Scored.of(it.image_id, p) for it, p in zip(items, preds, strict=True)]

        return score


# --- derivation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeriveItem:
    image_id: int
    src: str | None  # the original file; None: it cannot be read (then ``error`` says why)
    stem: str  # the derived file's path without extension
    key: str  # what the condition's seed is derived from (the image's sha256 or name)
    error: str | None = None


@dataclass(frozen=True)
class Derived:
    """One derived file, or why there is none; the columns of its derived-image row."""

    image_id: int
    path: str | None  # absolute; None when there is no file
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None


def derive_one(item: DeriveItem, condition_id: str) -> Derived:
    """Write one item's derived file (``robustness.apply.derive_file``); a failure becomes
    the result's error (one bad image must not stop the set)."""
    from robustness.apply import derive_file

    if item.src is None:
        return Derived(item.image_id, None, error=item.error or "no source file")
    try:
        d = derive_file(item.src, condition_id, item.stem, item.key)
    except Exception as exc:
        return Derived(item.image_id, None, error=f"cannot derive: {type(exc).__name__}: {exc}")
    return Derived(item.image_id, str(d.path), d.params, d.seed, d.width, d.height)


@dataclass(frozen=True)
class DeriveTask:
    """Derive batches of ``DeriveItem`` under one condition (CPU work)."""

    condition_id: str
    device: str = "cpu"

    def open(self) -> Callable[[list[DeriveItem]], list[Derived]]:
        return lambda items: [derive_one(it, self.condition_id) for it in items]
