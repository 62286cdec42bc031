"""Registry of image conditions, keyed by stable string ids.

A condition is a pure function ``fn(img, rng) -> (img, params)`` on RGB PIL images plus how its
result must be saved. The id is a contract (the DB stores it): changing behaviour means a new id.

Example::

    from robustness.registry import get, list_conditions
    cond = get("jpeg/q75")
    [c.id for c in list_conditions()]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.cli_errors import closest

__all__ = [
    "CONDITIONS",
    "Condition",
    "ConditionFn",
    "get",
    "list_conditions",
    "register",
    "seed_for",
]

ConditionFn = Callable[[Image.Image, np.random.Generator], "tuple[Image.Image, dict]"]
FILE_FORMATS = ("PNG", "JPEG", "WEBP")
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


@dataclass(frozen=True)
class Condition:
    """One registered image condition."""

    id: str  # stable id, e.g. "jpeg/q75"
    family: str  # "identity", "instagram", "meme", "screenshot", "jpeg", ...
    description: str  # one line, shown by `python -m robustness list`
    params: dict  # parameters bound at registration
    fn: ConditionFn  # (RGB image, rng) -> (image, per-image params actually used)
    file_format: str = "PNG"  # how the derived file is saved: PNG | JPEG | WEBP
    save_kwargs: dict = field(default_factory=dict)  # e.g. {"quality": 75}

    def __post_init__(self) -> None:
        if self.file_format not in FILE_FORMATS:
            raise ValueError(f"condition {self.id!r}: file_format must be one of {FILE_FORMATS}")

    @property
    def extension(self) -> str:
        """File extension of derived files, with the dot."""
        return EXTENSIONS[self.file_format]


CONDITIONS: dict[str, Condition] = {}


def register(cond: Condition) -> Condition:
    """Add a condition to the registry; a duplicate id raises ValueError."""
    if cond.id in CONDITIONS:
        raise ValueError(f"condition id {cond.id!r} is already registered")
    CONDITIONS[cond.id] = cond
    return cond


def get(condition_id: str) -> Condition:
    """Look up a condition; an unknown id raises KeyError naming the closest valid ids."""
    try:
        return CONDITIONS[condition_id]
    except KeyError:
        hint = closest(condition_id, CONDITIONS, listing="python -m robustness list")
        raise KeyError(f"Unknown condition {condition_id!r}{hint}") from None


def list_conditions() -> list[Condition]:
    """All registered conditions, sorted by id."""
    return [CONDITIONS[k] for k in sorted(CONDITIONS)]


def seed_for(image_key: str, condition_id: str) -> int:
    """Stable 63-bit seed from (image key, condition id); sha256-based, same on every run."""
    digest = hashlib.sha256(f"{condition_id}\x00{image_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
