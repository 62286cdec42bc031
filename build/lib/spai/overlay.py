"""Patch-attention overlay drawn correctly (unlike the official one's quirks).

Each crop's box gets its head-averaged attention weight (averaged where boxes overlap, so the
five-crop fallback maps each crop to its real place); weights are min-max normalised (a uniform
map is drawn at mid-scale, never NaN); colours follow a cool-warm diverging map.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

__all__ = ["attention_map", "coolwarm", "overlay_image"]

# Control points of the cool-warm diverging map (Moreland 2009): blue -> light grey -> red.
_COOLWARM = np.array(
    [
        [0.230, 0.299, 0.754],
        [0.552, 0.690, 0.996],
        [0.866, 0.866, 0.866],
        [0.958, 0.604, 0.482],
        [0.706, 0.016, 0.150],
    ]
)


def coolwarm(values: np.ndarray) -> np.ndarray:
    """Map values in [0,1] (any shape) to RGB floats in [0,1] (shape + (3,))."""
    v = np.clip(values, 0.0, 1.0) * (len(_COOLWARM) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_COOLWARM) - 2)
    t = (v - lo)[..., None]
    return _COOLWARM[lo] * (1 - t) + _COOLWARM[lo + 1] * t


def attention_map(
    height: int, width: int, boxes: Sequence[Sequence[int]], weights: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean attention over covering crops (H x W) and the coverage mask (H x W bool)."""
    total = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.float64)
    for (left, top, right, bottom), w in zip(boxes, weights):
        total[top:bottom, left:right] += w
        count[top:bottom, left:right] += 1
    covered = count > 0
    out = np.zeros_like(total)
    out[covered] = total[covered] / count[covered]
    return out, covered


def overlay_image(
    image: Image.Image,
    boxes: Sequence[Sequence[int]],
    weights: Sequence[float],
    *,
    opacity: float = 0.4,
) -> tuple[Image.Image, Image.Image]:
    """Blend the attention colour map over the image. Returns (overlay RGB, grey mask L).

    `image` must be the model input (after padding) so that the boxes match it.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    h, w = rgb.shape[:2]
    amap, covered = attention_map(h, w, boxes, weights)
    vals = amap[covered]
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 0.0)
    norm = np.full_like(amap, 0.5) if hi - lo < 1e-12 else (amap - lo) / (hi - lo)
    colour = coolwarm(norm)
    blend = rgb.copy()
    blend[covered] = (1 - opacity) * rgb[covered] + opacity * colour[covered]
    overlay = Image.fromarray(np.round(blend * 255).astype(np.uint8), "RGB")
    mask = Image.fromarray(np.round(np.where(covered, norm, 0) * 255).astype(np.uint8), "L")
    return overlay, mask
