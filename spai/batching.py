"""Many images through one Detector: decode in order, group by crops, score each group at once.

    for pred in score_stream(det, paths):              # one ImageResult per input, in order
        ...
    score_stream(det, paths, max_images=1)             # one image at a time (as before)

A group holds whole images and at most ``max_crops`` crops (default: the detector's chunk,
which it picks from the memory it has free), unless one image alone has more; its crops go
through the backbone together (``Detector.score_batch``), so a many-image job runs full
backbone batches instead of one small image's crops at a time. Scores equal one-by-one
scoring (per-crop features do not depend on their batch-mates).

An input that cannot be decoded gets its error in its own ImageResult and never joins a group;
if a group's forward pass fails (out of memory, say), its images are scored one by one, so one
image cannot fail the others.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spai.results import ImageResult, PreparedImage, Scorable, name_of

if TYPE_CHECKING:  # the detector imports this module; it is passed in, never imported here
    from spai.detector import Detector

__all__ = ["score_stream", "score_many"]


@dataclass
class _Decoded:
    index: int
    name: str
    got: PreparedImage | str  # the model input, or why there is none
    seconds: float  # decoding time


def _decode(detector: Detector, index: int, name: str, source: Scorable) -> _Decoded:
    t0 = time.perf_counter()
    got = detector.try_prepare(source)
    return _Decoded(index, name, got, time.perf_counter() - t0)


def _decoded(
    detector: Detector, sources: Iterable[Scorable], names: Sequence[str] | None, prefetch: int
) -> Iterator[_Decoded]:
    """Decode in input order; with ``prefetch`` > 0, that many images ahead in one thread."""
    items = ((i, names[i] if names is not None else name_of(s), s) for i, s in enumerate(sources))
    if prefetch <= 0:
        for i, name, source in items:
            yield _decode(detector, i, name, source)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="spai-decode") as pool:
        ahead: deque[Future[_Decoded]] = deque()
        for i, name, source in items:
            ahead.append(pool.submit(_decode, detector, i, name, source))
            if len(ahead) > prefetch:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _crops(detector: Detector, prepared: PreparedImage) -> int:
    h, w = prepared.tensor.shape[1], prepared.tensor.shape[2]
    return len(detector.model.layout(h, w).boxes)


def _score_group(detector: Detector, group: list[_Decoded]) -> list[ImageResult]:
    """Score the decoded images of one group together; one by one if that pass fails."""
    items = [d.got for d in group]
    names = [d.name for d in group]
    try:
        preds = detector.score_batch(items, names=names)
    except Exception as exc:  # the group's pass failed: find which image it was
        preds = [_scoring_failed(group[0], exc)] if len(group) == 1 else [_score_alone(detector, d) for d in group]
    for pred, d in zip(preds, group):
        pred.seconds += d.seconds
    return preds


def _score_alone(detector: Detector, d: _Decoded) -> ImageResult:
    try:
        return detector.score_batch([d.got], names=[d.name])[0]
    except Exception as exc:  # this image's problem only
        return _scoring_failed(d, exc)


def _scoring_failed(d: _Decoded, exc: Exception) -> ImageResult:
    return ImageResult(source=d.name, error=f"scoring failed: {type(exc).__name__}: {exc}")


def score_stream(
    detector: Detector,
    sources: Iterable[Scorable],
    *,
    names: Sequence[str] | None = None,
    max_images: int | None = None,
    max_crops: int | None = None,
    prefetch: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[ImageResult]:
    """Yield one ImageResult per source, in input order, scoring images in groups.

    ``max_images`` caps the images per group (None: no cap, only ``max_crops``), ``max_crops``
    the crops per group (None: ``detector.chunk``). ``prefetch`` decodes that many images ahead
    in a background thread while the backbone runs. ``should_stop`` is asked before each
    group is scored; when it says stop, nothing more is yielded.
    """
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be at least 1, got {max_images}")
    crop_cap = max_crops or detector.chunk
    group: list[_Decoded] = []
    done: list[_Decoded] = []  # decode failures waiting for the group before them
    crops = 0

    def flush() -> Iterator[ImageResult]:
        nonlocal crops
        if group and should_stop is not None and should_stop():
            raise _Stop
        preds = dict(zip((d.index for d in group), _score_group(detector, group))) if group else {}
        for d in sorted(group + done, key=lambda d: d.index):
            yield preds[d.index] if d.index in preds else _failed(d)
        group.clear()
        done.clear()
        crops = 0

    try:
        for d in _decoded(detector, sources, names, prefetch):
            if isinstance(d.got, str):
                if group:
                    done.append(d)
                else:
                    yield _failed(d)
                continue
            n = _crops(detector, d.got)
            full = max_images is not None and len(group) >= max_images
            if group and (full or crops + n > crop_cap):
                yield from flush()
            group.append(d)
            crops += n
        yield from flush()
    except _Stop:
        return


class _Stop(Exception):
    """Raised inside score_stream when should_stop() says so."""


def _failed(d: _Decoded) -> ImageResult:
    return ImageResult(source=d.name, error=str(d.got), seconds=d.seconds)


def score_many(
    detector: Detector,
    sources: Sequence[Scorable],
    *,
    names: Sequence[str] | None = None,
    max_images: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[ImageResult]:
    """``score_stream`` collected into a list, with progress after each image."""
    out: list[ImageResult] = []
    for pred in score_stream(detector, sources, names=names, max_images=max_images, should_stop=should_stop):
        out.append(pred)
        if on_progress is not None:
            on_progress(len(out), len(sources))
    return out
