"""Private loaders for the shipped assets (fonts, emoji, caption corpus), cached per process.

A missing font falls back to Pillow's built-in font; missing emoji give an empty sticker list.
Nothing here reads outside ``robustness/assets/``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageFont

ASSETS = Path(__file__).resolve().parent / "assets"
FONTS = ASSETS / "fonts"
EMOJI = ASSETS / "emoji"
CORPUS = ASSETS / "text" / "genesis_kjv.txt"
DEFAULT_FONT = "pillow-default"


@lru_cache(maxsize=256)
def font(name: str, size: int) -> tuple[ImageFont.FreeTypeFont, str]:
    """Load ``assets/fonts/<name>`` at ``size`` px; returns (font, name actually used)."""
    size = max(1, int(size))
    try:
        return ImageFont.truetype(str(FONTS / name), size), name
    except OSError:
        return ImageFont.load_default(size=size), DEFAULT_FONT


@lru_cache(maxsize=1)
def emoji() -> tuple[tuple[str, Image.Image], ...]:
    """All emoji stickers as (name, RGBA image), sorted by name."""
    out = []
    for path in sorted(EMOJI.glob("*.png")):
        with Image.open(path) as im:
            out.append((path.stem, im.convert("RGBA")))
    return tuple(out)


@lru_cache(maxsize=1)
def corpus_text() -> str:
    """The caption corpus as one string ('' when missing)."""
    try:
        return CORPUS.read_text(encoding="utf-8")
    except OSError:
        return ""
