"""Apply a registered condition to one image, seeded from (image key, condition id).

``apply_condition`` returns the image exactly as it decodes from the saved file (lossy
encodings included); ``derive_file`` writes those same bytes to disk;
``score_under_conditions`` scores the image under several conditions in one batch (the Score
page's "what if" and the Inspect page's variants).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from robustness._image import decode, encode, to_rgb
from robustness.registry import get, seed_for
from core.atomic import write_bytes
from core.imageio import open_image
from core.limits import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:  # the caller passes its loaded detector; torch is not imported here
    from spai.detector import Detector

__all__ = ["ConditionScore", "DerivedFile", "apply_condition", "derive_file", "render", "score_under_conditions"]


@dataclass(frozen=True)
class DerivedFile:
    """A derived file on disk and what was done to make it."""

    path: Path  # with the extension of the condition's file format
    params: dict  # per-image parameters actually used, including "seed"
    seed: int
    width: int
    height: int


@dataclass(frozen=True)
class ConditionScore:
    """One condition's variant of an image and the model's score of it."""

    condition_id: str
    image: Image.Image | None  # the variant as decoded from its saved form; None: it failed
    score: float | None
    error: str | None  # why the condition or the scoring failed


def render(
    img: Image.Image,
    condition_id: str,
    image_key: str,
    *,
    encoded: bool = True,
    seed: int | None = None,
) -> tuple[bytes | Image.Image, dict]:
    """Encoded bytes of the derived image (in the condition's file format) and its params;
    with ``encoded=False`` the RGB image before encoding (identical to its PNG decode).
    ``seed`` overrides ``seed_for(image_key, condition_id)`` (training augmentation)."""
    cond = get(condition_id)
    seed = seed_for(image_key, condition_id) if seed is None else seed
    src = to_rgb(img)
    out, params = cond.fn(src, np.random.default_rng(seed))
    out = to_rgb(out)
    params = {"seed": seed, **params, "format": cond.file_format, **cond.save_kwargs}
    return (encode(out, cond.file_format, cond.save_kwargs) if encoded else out), params


def apply_condition(
    img: Image.Image, condition_id: str, image_key: str, *, seed: int | None = None
) -> tuple[Image.Image, dict]:
    """The derived RGB image as decoded from its saved form, and the per-image params."""
    lossless = get(condition_id).file_format == "PNG"  # PNG decodes to the very same pixels
    data, params = render(img, condition_id, image_key, encoded=not lossless, seed=seed)
    return (data if lossless else decode(data)), params


def derive_file(
    src_path: str | Path,
    condition_id: str,
    out_path_without_ext: str | Path,
    image_key: str,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> DerivedFile:
    """Read ``src_path`` (through the capped decoder), apply the condition, write
    ``<out>.<ext>`` (whole or not at all); errors propagate (``ImageLoadError`` for an image
    over ``max_pixels``)."""
    data, params = render(open_image(src_path, max_pixels), condition_id, image_key)
    path = write_bytes(Path(f"{out_path_without_ext}{get(condition_id).extension}"), data)
    with Image.open(io.BytesIO(data)) as saved:  # header only: the size
        width, height = saved.size
    return DerivedFile(path=path, params=params, seed=params["seed"], width=width, height=height)


def score_under_conditions(
    detector: Detector,
    img: Image.Image,
    image_key: str,
    conditions: Sequence[str],
    *,
    on_variant: Callable[[int, str], None] | None = None,
) -> list[ConditionScore]:
    """The image under each condition (seeded by ``image_key``, e.g. its sha256), all variants
    scored in one ``detector.score_batch``. A condition that fails gets its error; the others
    still score. ``on_variant(i, condition_id)`` is told after each variant is made."""
    variants: dict[str, Image.Image] = {}
    failed: dict[str, str] = {}
    for i, cid in enumerate(conditions):
        try:
            variants[cid], _ = apply_condition(img, cid, image_key)
        except Exception as exc:  # one condition failing must not stop the others
            failed[cid] = f"{type(exc).__name__}: {exc}"
        if on_variant is not None:
            on_variant(i, cid)
    preds = dict(zip(variants, detector.score_batch(list(variants.values()), names=list(variants)))) if variants else {}
    return [
        ConditionScore(cid, None, None, failed[cid])
        if cid in failed
        else ConditionScore(cid, variants[cid], preds[cid].score, preds[cid].error)
        for cid in conditions
    ]
