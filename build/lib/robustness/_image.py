"""Private image helpers shared by the condition families: mode conversion and encoding."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB the way SPAI reads images (``.convert("RGB")``).

    16-bit and 32-bit integer images are scaled to 8 bit (65535 -> 255) instead of clipped;
    float images in [0, 1] are scaled by 255, otherwise clipped to [0, 255].
    """
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == "I" and arr.max(initial=0) <= 255:
            scaled = arr
        else:
            scaled = np.clip(arr, 0, 65535) / 257.0
        gray = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
        return gray.convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if np.nanmax(arr, initial=0) <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return img.convert("RGB")


def encode(img: Image.Image, file_format: str, save_kwargs: dict) -> bytes:
    """Encode an image to bytes in the given format."""
    buf = io.BytesIO()
    img.save(buf, format=file_format, **save_kwargs)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    """Decode bytes to a fully loaded RGB image."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return to_rgb(im)


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(w, h) multiplied by scale, rounded, at least 1 px each."""
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
