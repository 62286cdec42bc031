"""Decoding images the way the official SPAI loader does, with specific errors for bad input.

Official behaviour (spec section 2): Pillow decode, ``.convert("RGB")`` (grayscale replicated,
alpha dropped, palettes expanded, first frame of animations, no EXIF rotation), optional
SmallestMaxSize resize, centred reflect-101 padding of any side shorter than 224, then /255.

Every decode of a user's image (upload, registration, derivation, inference, training,
thumbnails) goes through ``open_image`` (``open_rgb`` = it + RGB): the pixel cap (``max_pixels``,
default 100 Mpx) is checked from the header before any pixel is decoded. Pillow's own
process-wide guard (``Image.MAX_IMAGE_PIXELS``) stays on as a second line, at the same default;
``raise_pillow_guard`` lifts it when a caller asks for a larger cap.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from core.limits import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageLoadError",
    "ImageSource",
    "open_image",
    "open_rgb",
    "raise_pillow_guard",
    "thumbnail",
    "pad_to_min_side",
    "to_model_input",
    "resolve_under_root",
]

ImageSource = str | os.PathLike | bytes | Image.Image

Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS  # Pillow warns above, refuses above twice this


class ImageLoadError(ValueError):
    """An input that cannot be scored; the message says why."""


def raise_pillow_guard(max_pixels: int | None) -> None:
    """Make Pillow's process-wide guard at least ``max_pixels`` (never lowered, never off), so
    that a cap chosen above the default is not refused by Pillow first (called by every open)."""
    if max_pixels is not None and max_pixels > (Image.MAX_IMAGE_PIXELS or 0):
        Image.MAX_IMAGE_PIXELS = max_pixels


def open_rgb(source: ImageSource, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file, bytes or PIL image to RGB, refusing oversized images before decoding."""
    img = open_image(source, max_pixels)
    return img.convert("RGB") if img.mode != "RGB" else img


def open_image(source: ImageSource, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file, bytes or PIL image (mode and ``format`` kept), refusing an image
    over ``max_pixels`` from its header, before decoding; ``ImageLoadError`` says why."""
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "image")
        return source
    with _opened(source, max_pixels) as img:
        return _load(img)


def _load(img: Image.Image) -> Image.Image:
    """Decode the pixels of an opened image; decoder failures become ``ImageLoadError``."""
    try:
        img.load()
        return img
    except OSError as exc:
        msg = str(exc)
        if "truncated" in msg or "broken data stream" in msg:
            raise ImageLoadError(f"truncated image data ({img.format}): {msg}") from None
        raise ImageLoadError(f"corrupt or unreadable image data ({img.format}): {msg}") from None
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageLoadError(f"cannot decode image ({img.format}): {exc}") from None


def thumbnail(source: ImageSource, size: int = 240, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """A small RGB copy for display (JPEGs decoded at reduced scale), under the same cap."""
    if isinstance(source, Image.Image):
        img = open_rgb(source, max_pixels).copy()
    else:
        with _opened(source, max_pixels) as raw:
            raw.draft("RGB", (size, size))  # JPEG: decode at 1/2 .. 1/8 scale
            img = open_rgb(_load(raw), None)
    img.thumbnail((size, size))
    return img


def _opened(source: str | os.PathLike | bytes, max_pixels: int | None) -> Image.Image:
    """``Image.open`` (header only) of a path or bytes, size checked against the cap."""
    name = "uploaded bytes" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageLoadError("empty input (0 bytes)")
        fh: io.IOBase | str = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageLoadError(f"file not found: {path}")
        if path.is_dir():
            raise ImageLoadError(f"is a directory, not an image: {path}")
        if path.stat().st_size == 0:
            raise ImageLoadError("empty file (0 bytes)")
        fh = str(path)
    raise_pillow_guard(max_pixels)
    try:
        img = Image.open(fh)
    except UnidentifiedImageError:
        raise ImageLoadError(f"not an image or unsupported format: {name}") from None
    except Image.DecompressionBombError as exc:  # Pillow's guard, from the header too
        raise ImageLoadError(f"image too large: {exc} (raise the cap with --max-pixels)") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot open image: {exc}") from None
    try:
        _check_pixels(img.size, max_pixels, img.format or "image")
    except ImageLoadError:
        img.close()
        raise
    return img


def _check_pixels(size: tuple[int, int], max_pixels: int | None, what: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageLoadError(f"{what} has an empty size {w}x{h}")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageLoadError(
            f"image too large: {w}x{h} = {w * h:,} pixels exceeds the cap of {max_pixels:,} "
            "(raise it with --max-pixels)"
        )


def pad_to_min_side(arr: np.ndarray, size: int) -> np.ndarray:
    """H x W x C -> at least size x size: a side shorter than `size` is padded, centred
    (the extra pixel at the bottom/right), with reflect-101 as the official code does."""
    h, w = arr.shape[:2]
    if h >= size and w >= size:
        return arr
    ph, pw = max(0, size - h), max(0, size - w)
    return cv2.copyMakeBorder(arr, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2, cv2.BORDER_REFLECT_101)


def to_model_input(img: Image.Image, size: int = 224, resize_to: int | None = None) -> torch.Tensor:
    """RGB PIL image -> 3 x H x W float32 in [0,1], padded (reflect-101, centred) to >= size."""
    import torch  # here, so that decoding alone (registration, pages) does not load torch

    arr = np.asarray(img, dtype=np.uint8)  # H x W x 3
    if resize_to is not None:
        h, w = arr.shape[:2]
        scale = resize_to / min(h, w)
        new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        arr = cv2.resize(arr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    x = pad_to_min_side(arr, size).astype(np.float32) * np.float32(1.0 / 255.0)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def resolve_under_root(root: str | os.PathLike, relative: str) -> Path:
    """Join a CSV path to its root; refuse paths that escape the root (.., absolute elsewhere)."""
    root_path = Path(root).resolve()
    candidate = (root_path / relative).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise ImageLoadError(f"path escapes the CSV root directory {root_path}: {relative}")
    return candidate
