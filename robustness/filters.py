"""Instagram-style colour filters from ``pilgram2`` (CSSgram re-implementation), as the study used.

``instagram-filter`` draws one of the 40 filters per image and saves JPEG quality 75 (what the
study did); ``instagram-filter/no-jpeg`` keeps the filter alone (PNG) so the two effects can be
told apart. Each filter also has its own id, ``instagram/<name>`` (+ ``/no-jpeg``).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pilgram2
from PIL import Image

from robustness.registry import Condition, register

# The study's pool: every filter pilgram2 ships, called with default parameters.
FILTER_NAMES: tuple[str, ...] = (
    "_1977",
    "aden",
    "amaro",
    "ashby",
    "brannan",
    "brooklyn",
    "charmes",
    "clarendon",
    "crema",
    "dogpatch",
    "earlybird",
    "gingham",
    "ginza",
    "hefe",
    "helena",
    "hudson",
    "inkwell",
    "juno",
    "kelvin",
    "lark",
    "lofi",
    "ludwig",
    "maven",
    "mayfair",
    "moon",
    "nashville",
    "perpetua",
    "poprocket",
    "reyes",
    "rise",
    "sierra",
    "skyline",
    "slumber",
    "stinson",
    "sutro",
    "toaster",
    "valencia",
    "walden",
    "willow",
    "xpro2",
)
STUDY_JPEG = {"quality": 75}  # the study saved every filtered image as JPEG q75


def apply_filter(img: Image.Image, name: str) -> Image.Image:
    """Apply one pilgram2 filter by name; returns RGB."""
    if name not in FILTER_NAMES:
        raise KeyError(f"Unknown filter {name!r}. Available: {', '.join(FILTER_NAMES)}")
    return getattr(pilgram2, name)(img).convert("RGB")


def random_filter(
    img: Image.Image, rng: np.random.Generator, *, pool: tuple[str, ...] = FILTER_NAMES
) -> tuple[Image.Image, dict]:
    """Apply a filter drawn uniformly from ``pool``."""
    name = pool[int(rng.integers(len(pool)))]
    return apply_filter(img, name), {"filter": name}


def fixed_filter(img: Image.Image, rng: np.random.Generator, *, name: str) -> tuple[Image.Image, dict]:
    """Apply the named filter."""
    return apply_filter(img, name), {"filter": name}


def _register_all() -> None:
    variants = (
        ("", "JPEG", STUDY_JPEG, ", then JPEG q75 (as the study)"),
        ("/no-jpeg", "PNG", {}, ", saved losslessly (PNG)"),
    )
    for suffix, fmt, kwargs, what in variants:
        register(
            Condition(
                id=f"instagram-filter{suffix}",
                family="instagram",
                description=f"Random Instagram-style filter of 40 (pilgram2) per image{what}",
                params={"pool": list(FILTER_NAMES)},
                fn=random_filter,
                file_format=fmt,
                save_kwargs=dict(kwargs),
            )
        )
        for name in FILTER_NAMES:
            register(
                Condition(
                    id=f"instagram/{name.lstrip('_')}{suffix}",
                    family="instagram",
                    description=f"Instagram-style filter '{name}' (pilgram2){what}",
                    params={"filter": name},
                    fn=partial(fixed_filter, name=name),
                    file_format=fmt,
                    save_kwargs=dict(kwargs),
                )
            )


_register_all()
