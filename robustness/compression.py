"""Re-encoding and geometry conditions: identity, JPEG, WebP, resize, crop, blur, noise,
social-media re-share and the classical stand-in for the study's super-resolution.

Every function is pure: ``(RGB image, rng) -> (image, params)``; the encoding itself (JPEG/WebP
quality) is part of the registered Condition's ``file_format``/``save_kwargs``.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from PIL import Image, ImageFilter

from robustness._image import scaled_size
from robustness.registry import Condition, register

RESAMPLE = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
}


def identity(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """Return the image unchanged."""
    return img.copy(), {}


def resize(
    img: Image.Image, rng: np.random.Generator, *, scale: float, resample: str = "lanczos"
) -> tuple[Image.Image, dict]:
    """Scale both sides by ``scale``."""
    size = scaled_size(img.size, scale)
    return img.resize(size, RESAMPLE[resample]), {"size": list(size)}


def down_up(
    img: Image.Image, rng: np.random.Generator, *, factor: float = 2.0, resample: str = "lanczos"
) -> tuple[Image.Image, dict]:
    """Downscale by ``factor`` then upscale back to the original size (classical 'SR')."""
    small = scaled_size(img.size, 1.0 / factor)
    out = img.resize(small, RESAMPLE[resample]).resize(img.size, RESAMPLE[resample])
    return out, {"intermediate_size": list(small)}


def center_crop(img: Image.Image, rng: np.random.Generator, *, fraction: float) -> tuple[Image.Image, dict]:
    """Keep the central ``fraction`` of each side."""
    w, h = img.size
    cw, ch = max(1, round(w * fraction)), max(1, round(h * fraction))
    left, top = (w - cw) // 2, (h - ch) // 2
    box = (left, top, left + cw, top + ch)
    return img.crop(box), {"box": list(box)}


def gaussian_blur(img: Image.Image, rng: np.random.Generator, *, sigma: float) -> tuple[Image.Image, dict]:
    """Gaussian blur with standard deviation ``sigma`` pixels."""
    return img.filter(ImageFilter.GaussianBlur(radius=sigma)), {}


def gaussian_noise(img: Image.Image, rng: np.random.Generator, *, sigma: float) -> tuple[Image.Image, dict]:
    """Add i.i.d. Gaussian noise (sigma on the 0-255 scale), rounded and clipped to uint8."""
    arr = np.asarray(img, dtype=np.float32)
    noisy = arr + rng.normal(0.0, sigma, size=arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="RGB"), {}


def cap_long_side(img: Image.Image, rng: np.random.Generator, *, long_side: int) -> tuple[Image.Image, dict]:
    """Downscale (never upscale) so that the longer side is at most ``long_side``."""
    scale = long_side / max(img.size)
    if scale >= 1.0:
        return img.copy(), {"size": list(img.size), "resized": False}
    size = scaled_size(img.size, scale)
    return img.resize(size, Image.Resampling.LANCZOS), {"size": list(size), "resized": True}


def _reg(
    cid: str,
    family: str,
    description: str,
    fn,
    params: dict,
    file_format: str = "PNG",
    save_kwargs: dict | None = None,
) -> None:
    bound = partial(fn, **params) if params else fn
    register(
        Condition(
            id=cid,
            family=family,
            description=description,
            params=params,
            fn=bound,
            file_format=file_format,
            save_kwargs=save_kwargs or {},
        )
    )


_reg("original", "identity", "Unchanged image, saved losslessly as PNG", identity, {})
for _q in (50, 75, 90):
    _reg(
        f"jpeg/q{_q}",
        "jpeg",
        f"Re-encoded as JPEG quality {_q}",
        identity,
        {},
        "JPEG",
        {"quality": _q},
    )
for _q in (75, 90):
    _reg(
        f"webp/q{_q}",
        "webp",
        f"Re-encoded as lossy WebP quality {_q}",
        identity,
        {},
        "WEBP",
        {"quality": _q},
    )
for _s in (0.5, 0.75, 1.5):
    _reg(
        f"resize/x{_s}",
        "resize",
        f"Both sides scaled by {_s} (Lanczos), PNG",
        resize,
        {"scale": _s, "resample": "lanczos"},
    )
_reg("crop/center-0.8", "crop", "Central 80% of each side kept, PNG", center_crop, {"fraction": 0.8})
for _s in (1.0, 2.0):
    _reg(f"blur/s{_s}", "blur", f"Gaussian blur, sigma {_s} px, PNG", gaussian_blur, {"sigma": _s})
for _s in (5, 10):
    _reg(
        f"noise/s{_s}",
        "noise",
        f"Additive Gaussian noise, sigma {_s}/255, PNG",
        gaussian_noise,
        {"sigma": float(_s)},
    )
for _side, _q in ((1080, 80), (2048, 85)):
    _reg(
        f"social/{_side}-q{_q}",
        "social",
        f"Social re-share: long side capped at {_side} px (Lanczos), then JPEG quality {_q}",
        cap_long_side,
        {"long_side": _side},
        "JPEG",
        {"quality": _q},
    )
_reg(
    "resample/x0.5-x2-lanczos",
    "resample",
    "Downscale x0.5 then upscale x2 with Lanczos (classical stand-in for the study's BSRGAN SR)",
    down_up,
    {"factor": 2.0, "resample": "lanczos"},
)
