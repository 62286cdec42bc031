"""What a Detector takes and gives, as plain data: a prepared image and one image's result.

Its own module so that ``spai.batching`` (which groups images for a Detector) and
``spai.detector`` (which scores them) share these types without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from core.imageio import ImageSource

__all__ = ["ImageResult", "PreparedImage", "ProgressFn", "Scorable", "name_of"]

ProgressFn = Callable[[int, int], None]


@dataclass
class ImageResult:
    """One image's result. Geometry is in the coordinates of the (padded) model input."""

    source: str
    score: float | None = None
    logit: float | None = None
    error: str | None = None
    seconds: float = 0.0
    width: int | None = None  # decoded image size (before padding)
    height: int | None = None
    input_width: int | None = None  # after pad-if-smaller (and --resize-to)
    input_height: int | None = None
    grid_rows: int = 0
    grid_cols: int = 0
    five_crop: bool = False
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # L x (l, t, r, b)
    attention: list[list[float]] = field(default_factory=list)  # heads x L
    attention_mean: list[float] = field(default_factory=list)  # L
    similarity: list[list[float]] = field(default_factory=list)  # L x 6N

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def num_patches(self) -> int:
        return len(self.boxes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PreparedImage:
    """One decoded image and its model input: decode once, then score and show it many times.

    Treat both as read-only (a cache may hand the same object to several callers).
    """

    image: Image.Image  # decoded RGB, as the file holds it (before padding)
    tensor: torch.Tensor  # 3 x H x W in [0,1], padded (and resized) as the model takes it

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as decoded."""
        return self.image.size


Scorable = ImageSource | PreparedImage


def name_of(source: Scorable) -> str:
    """A label for a source: its path, "<bytes>", or a file-like's name."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, bytes):
        return "<bytes>"
    return getattr(source, "filename", "") or "<image>"
