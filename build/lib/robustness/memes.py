"""Meme condition: upper-case caption top and bottom (outlined white text) plus emoji stickers.

Follows the study's recipe (roger-study README §2.2): a Genesis (KJV) sentence of >= 20 chars with
the inner letters of long words shuffled, font size 5-10% of the height, wrapped at 30 chars then
to 90% of the width, first half of the lines at the top, the rest at the bottom, random x per
line, one random vertical offset of +-4% of the height, a 2 px black outline; then 5-10 emoji
stickers of 4-16% of the height at random places. Saved losslessly (PNG), RGB.
"""

from __future__ import annotations

import re
import textwrap
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from robustness import _assets
from robustness.registry import Condition, register

# Stand-ins for the study's Impact / Comic Sans / Arial, all shipped with licences.
MEME_FONTS = ("BebasNeue-Bold.otf", "DejaVuSans-Bold.ttf", "LiberationSans-Regular.ttf")
MIN_SENTENCE_CHARS = 20  # shorter sentences are dropped, as in the study
WRAP_CHARS = 30  # first wrap width in characters
MAX_LINE_FRACTION = 0.9  # lines re-wrapped to at most 90% of the image width
STROKE_PX = 2  # the study's 5x5 black offset grid ~ a 2 px outline
_WORD = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=1)
def sentences() -> tuple[str, ...]:
    """Corpus sentences (split on . ! ?) of at least MIN_SENTENCE_CHARS characters."""
    parts = (s.strip() for s in re.split(r"[.!?]", _assets.corpus_text()))
    found = tuple(" ".join(s.split()) for s in parts if len(s) >= MIN_SENTENCE_CHARS)
    return found or ("AND GOD SAW THAT IT WAS GOOD",)


def scramble(text: str, rng: np.random.Generator) -> str:
    """Shuffle the inner letters of every word longer than 3 letters (first/last kept)."""

    def one(m: re.Match) -> str:
        w = m.group(0)
        if len(w) <= 3:
            return w
        inner = list(w[1:-1])
        rng.shuffle(inner)
        return w[0] + "".join(inner) + w[-1]

    return _WORD.sub(one, text)


def make_caption(rng: np.random.Generator) -> str:
    """A random corpus sentence, scrambled and upper-cased."""
    pool = sentences()
    return scramble(pool[int(rng.integers(len(pool)))], rng).upper()


def wrap_lines(text: str, draw: ImageDraw.ImageDraw, font, max_width: float) -> list[str]:
    """Wrap at WRAP_CHARS characters, then greedily so each line fits ``max_width`` pixels."""
    lines: list[str] = []
    for chunk in textwrap.wrap(text, WRAP_CHARS) or [text]:
        current = ""
        for word in chunk.split():
            trial = f"{current} {word}".strip()
            if current and draw.textlength(trial, font=font) > max_width:
                lines.append(current)
                current = word
            else:
                current = trial
        if current:
            lines.append(current)
    return lines


def _draw_caption(overlay: Image.Image, caption: str, rng: np.random.Generator) -> dict:
    w, h = overlay.size
    size = int(rng.integers(max(1, int(0.05 * h)), max(1, int(0.10 * h)) + 1))
    font, font_name = _assets.font(MEME_FONTS[int(rng.integers(len(MEME_FONTS)))], size)
    draw = ImageDraw.Draw(overlay)
    lines = wrap_lines(caption, draw, font, MAX_LINE_FRACTION * w)
    a_box = draw.textbbox((0, 0), "A", font=font)
    line_h = (a_box[3] - a_box[1]) + 5
    n_top = len(lines) // 2 or len(lines)
    top, bottom = lines[:n_top], lines[n_top:]
    top_y = 20
    bottom_y = max(len(top) * line_h + 10, h - len(bottom) * line_h - 40)
    shift = int(rng.integers(-int(0.04 * h), int(0.04 * h) + 1))
    placed = []
    for block, y0 in ((top, top_y), (bottom, bottom_y)):
        for i, line in enumerate(block):
            lw = draw.textlength(line, font=font)
            x = int(rng.integers(0, max(0, int(w - lw)) + 1))
            y = y0 + shift + i * line_h
            draw.text(
                (x, y),
                line,
                font=font,
                fill=(255, 255, 255, 255),
                stroke_width=STROKE_PX,
                stroke_fill=(0, 0, 0, 255),
            )
            placed.append({"text": line, "xy": [x, y]})
    return {
        "font": font_name,
        "font_size": size,
        "line_height": line_h,
        "offset_y": shift,
        "lines": placed,
    }


def _paste_stickers(overlay: Image.Image, rng: np.random.Generator) -> list[dict]:
    stickers = _assets.emoji()
    if not stickers:
        return []
    w, h = overlay.size
    placed = []
    for _ in range(int(rng.integers(5, 11))):
        name, sticker = stickers[int(rng.integers(len(stickers)))]
        side = int(rng.integers(max(1, int(0.04 * h)), max(1, int(0.16 * h)) + 1))
        scale = side / max(sticker.size)
        sw, sh = max(1, round(sticker.width * scale)), max(1, round(sticker.height * scale))
        x = int(rng.integers(0, max(0, w - sw) + 1))
        y = int(rng.integers(0, max(0, h - sh) + 1))
        resized = sticker.resize((sw, sh), Image.Resampling.LANCZOS)
        overlay.alpha_composite(resized.crop((0, 0, min(sw, w - x), min(sh, h - y))), (x, y))
        placed.append({"emoji": name, "size": side, "xy": [x, y]})
    return placed


def meme(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """Caption + stickers drawn on an RGBA overlay, composited, returned as RGB."""
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    caption = make_caption(rng)
    params = {"caption": caption, **_draw_caption(overlay, caption, rng)}
    params["stickers"] = _paste_stickers(overlay, rng)
    out = Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")
    return out, params


register(
    Condition(
        id="meme",
        family="meme",
        description="Upper-case Genesis caption top/bottom (outlined) + 5-10 emoji stickers, PNG",
        params={
            "fonts": list(MEME_FONTS),
            "font_size_frac": [0.05, 0.10],
            "wrap_frac": 0.9,
            "stickers": [5, 10],
            "sticker_frac": [0.04, 0.16],
            "stroke_px": STROKE_PX,
        },
        fn=meme,
        file_format="PNG",
    )
)
