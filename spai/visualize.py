"""Pure helpers behind the dashboard's Score and Inspect pages (no Streamlit here).

    spec = log_spectrum(img)                        # H x W float, centred, log(1 + |F|)
    to_grey_image(spec)                             # PIL "L" for display
    low, high = low_high_views(img, radius=16)      # what SPAI compares, on one 224 crop
    patch_table(pred)                               # one row per crop: box, attention, similarity

Frequency conventions follow ``spai.spectral``: the spectrum is ``fftshift``-ed so the DC term sits
at the centre, and the low-pass disc uses the same geometry as the model's mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from spai.spectral import frequency_mask, split_low_high

__all__ = [
    "SIMILARITY_STATS",
    "center_crop",
    "crop_box",
    "log_spectrum",
    "low_high_views",
    "patch_table",
    "similarity_by_stat",
    "tensor_to_image",
    "to_grey_image",
]

CROP_SIZE = 224  # SPAI's crop side; the masking radius is defined on this size
# Order of the 6 per-layer statistics in ImageResult.similarity (L x 6N, stat-major).
SIMILARITY_STATS = (
    "mean cos(orig, low)",
    "std cos(orig, low)",
    "mean cos(orig, high)",
    "std cos(orig, high)",
    "mean cos(low, high)",
    "std cos(low, high)",
)


def _as_array(img: Image.Image | np.ndarray) -> np.ndarray:
    """RGB image (PIL or H x W x 3 / H x W array) -> float64 H x W x C in [0, 1]."""
    arr = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img)
    arr = arr.astype(np.float64)
    if arr.max(initial=0.0) > 1.0:
        arr = arr / 255.0
    return arr[..., None] if arr.ndim == 2 else arr


def log_spectrum(img: Image.Image | np.ndarray) -> np.ndarray:
    """Centred 2-D log-magnitude spectrum, log(1 + |FFT|), of the image's luminance (H x W).

    Colour images are reduced to luma (ITU-R BT.601 weights) before the transform.
    """
    arr = _as_array(img)  # H x W x C
    if arr.shape[2] >= 3:
        grey = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    else:
        grey = arr[..., 0]
    spec = np.fft.fftshift(np.fft.fft2(grey - grey.mean()))  # H x W complex, DC removed
    return np.log1p(np.abs(spec))


def to_grey_image(values: np.ndarray, *, lo_pct: float = 1.0, hi_pct: float = 99.9) -> Image.Image:
    """Min-max scale a 2-D array to 0..255 between two percentiles (robust to the DC spike)."""
    if values.ndim != 2:
        raise ValueError(f"to_grey_image needs a 2-D array, got shape {values.shape}")
    lo, hi = np.percentile(values, [lo_pct, hi_pct])
    scaled = np.zeros_like(values) if hi - lo < 1e-12 else (values - lo) / (hi - lo)
    return Image.fromarray(np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8), "L")


def crop_box(width: int, height: int, size: int = CROP_SIZE) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred size x size crop (the whole side if smaller)."""
    cw, ch = min(size, width), min(size, height)
    left, top = (width - cw) // 2, (height - ch) // 2
    return left, top, left + cw, top + ch


def center_crop(img: Image.Image, size: int = CROP_SIZE) -> Image.Image:
    """The centred size x size crop of an RGB image (smaller images are returned whole)."""
    return img.crop(crop_box(img.width, img.height, size))


def low_high_views(crop: Image.Image, radius: int = 16, *, size: int = CROP_SIZE) -> tuple[Image.Image, Image.Image]:
    """The low- and high-pass views SPAI compares, for one crop, at a chosen masking radius.

    The crop is resized to size x size only if it is not already that size (the model works on
    exact 224 crops; a resize is a display convenience for small images). Returns RGB images.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    rgb = crop.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    low, high = split_low_high(x, frequency_mask(size, radius))  # 1 x 3 x S x S each

    def _img(t: torch.Tensor) -> Image.Image:
        arr = t[0].permute(1, 2, 0).numpy()
        return Image.fromarray(np.round(arr * 255).astype(np.uint8), "RGB")

    return _img(low), _img(high)


def similarity_by_stat(similarity: Sequence[Sequence[float]]) -> np.ndarray:
    """L x 6N similarity vectors -> L x 6 x N array (stat-major, as the model lays them out)."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.size == 0:
        return sim.reshape(0, len(SIMILARITY_STATS), 0)
    if sim.ndim != 2 or sim.shape[1] % len(SIMILARITY_STATS):
        raise ValueError(f"similarity must be L x 6N, got shape {sim.shape}")
    return sim.reshape(sim.shape[0], len(SIMILARITY_STATS), -1)


def patch_table(
    boxes: Sequence[Sequence[int]],
    attention: Sequence[Sequence[float]],
    similarity: Sequence[Sequence[float]],
    *,
    grid_cols: int = 0,
) -> pd.DataFrame:
    """One row per crop: index, grid position, box, head-mean attention (and its share of the
    total), each head's weight, and each similarity statistic averaged over the model's layers.

    Args:
        boxes: L x (left, top, right, bottom) in model-input coordinates.
        attention: heads x L attention weights.
        similarity: L x 6N statistics (see ``SIMILARITY_STATS``).
        grid_cols: columns of the patch grid (0: five-crop layout, no row/col).
    """
    n = len(boxes)
    att = np.asarray(attention, dtype=np.float64).reshape(-1, n) if n else np.zeros((0, 0))
    if att.size and att.shape[1] != n:
        raise ValueError(f"attention has {att.shape[1]} patches, boxes {n}")
    mean = att.mean(axis=0) if att.size else np.zeros(n)
    total = mean.sum()
    frame = pd.DataFrame(
        {
            "patch": np.arange(n),
            "row": [i // grid_cols if grid_cols else -1 for i in range(n)],
            "col": [i % grid_cols if grid_cols else -1 for i in range(n)],
            "left": [int(b[0]) for b in boxes],
            "top": [int(b[1]) for b in boxes],
            "right": [int(b[2]) for b in boxes],
            "bottom": [int(b[3]) for b in boxes],
            "attention": mean,
            "attention_share": mean / total if total > 0 else np.zeros(n),
        }
    )
    for h in range(att.shape[0] if att.size else 0):
        frame[f"head_{h}"] = att[h]
    sims = similarity_by_stat(similarity)
    if len(sims) == n and n:
        for k, name in enumerate(SIMILARITY_STATS):
            frame[name] = sims[:, k, :].mean(axis=1)
    return frame


def tensor_to_image(x: torch.Tensor) -> Image.Image:
    """3 x H x W tensor in [0, 1] (a model input) -> RGB PIL image."""
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a 3 x H x W tensor, got shape {tuple(x.shape)}")
    arr = x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()  # H x W x 3
    return Image.fromarray(np.round(arr * 255).astype(np.uint8), "RGB")
