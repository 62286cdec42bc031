"""Patch-attention overlay drawn correctly (unlike the official one's quirks).

Each crop's box gets its head-averaged attention weight (averaged where boxes overlap, so the
five-crop fallback maps each crop to its real place); colours follow a cool-warm diverging map
on one of two scales (``OverlayScale``):

- ``"uniform"``: a fixed scale around uniform attention (every crop weighted 1/N, drawn neutral
  grey), from a quarter of it (blue) to four times it (red), logarithmic. Near-uniform
  attention (0.198-0.201 over five crops) stays grey: nothing stands out because nothing does.
- ``"stretch"``: min-max over this image (the smallest weight blue, the largest red), which
  shows the ranking even when the differences are tiny; the scale's ends say how tiny.

A uniform map is drawn at mid-scale, never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["OVERLAY_SCALES", "OverlayScale", "attention_map", "coolwarm", "overlay_image", "overlay_scale"]

OVERLAY_SCALES = ("uniform", "stretch")
UNIFORM_SPAN = 4.0  # the "uniform" scale runs from 1/4 to 4 times the uniform weight

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


@dataclass(frozen=True)
class OverlayScale:
    """How attention weights map to colours: ``lo`` is drawn blue, ``hi`` red and ``mid``
    neutral grey (weights outside [lo, hi] are clipped)."""

    mode: str  # "uniform" | "stretch"
    lo: float
    mid: float
    hi: float

    def position(self, weights: np.ndarray) -> np.ndarray:
        """Colour-map position in [0, 1] of each weight."""
        w = np.asarray(weights, dtype=np.float64)
        if self.mode == "uniform":
            if self.mid <= 0:
                return np.full_like(w, 0.5)
            ratio = np.maximum(w / self.mid, 1e-12)
            return np.clip(0.5 + np.log(ratio) / (2 * np.log(UNIFORM_SPAN)), 0.0, 1.0)
        if self.hi - self.lo < 1e-12:
            return np.full_like(w, 0.5)
        return np.clip((w - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def describe(self) -> str:
        """One line for the colour bar's caption."""
        if self.mode == "uniform":
            return (
                f"fixed scale: grey = uniform attention ({self.mid:.4f} per crop), blue = "
                f"{1 / UNIFORM_SPAN:g}x ({self.lo:.4f}) or less, red = {UNIFORM_SPAN:g}x "
                f"({self.hi:.4f}) or more"
            )
        return (
            f"stretched to this image: blue = its lowest weight {self.lo:.4f}, red = its "
            f"highest {self.hi:.4f} (a difference of {self.hi - self.lo:.4f})"
        )


def overlay_scale(weights: Sequence[float], mode: str = "uniform") -> OverlayScale:
    """The colour scale for these weights (see the module docstring for the modes)."""
    if mode not in OVERLAY_SCALES:
        raise ValueError(f"overlay scale must be one of {OVERLAY_SCALES}, got {mode!r}")
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return OverlayScale(mode, 0.0, 0.0, 0.0)
    if mode == "uniform":
        u = float(w.mean())
        return OverlayScale(mode, u / UNIFORM_SPAN, u, u * UNIFORM_SPAN)
    lo, hi = float(w.min()), float(w.max())
    return OverlayScale(mode, lo, (lo + hi) / 2, hi)


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
    scale: str | OverlayScale = "stretch",
) -> tuple[Image.Image, Image.Image]:
    """Blend the attention colour map over the image. Returns (overlay RGB, grey mask L).

    `image` must be the model input (after padding) so that the boxes match it; `scale` is a
    mode of ``overlay_scale`` or a scale made by it.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    h, w = rgb.shape[:2]
    amap, covered = attention_map(h, w, boxes, weights)
    if isinstance(scale, str):
        scale = overlay_scale(weights, scale)
    norm = scale.position(amap)
    colour = coolwarm(norm)
    blend = rgb.copy()
    blend[covered] = (1 - opacity) * rgb[covered] + opacity * colour[covered]
    overlay = Image.fromarray(np.round(blend * 255).astype(np.uint8), "RGB")
    mask = Image.fromarray(np.round(np.where(covered, norm, 0) * 255).astype(np.uint8), "L")
    return overlay, mask
