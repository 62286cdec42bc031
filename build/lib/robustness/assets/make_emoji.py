"""Render the meme condition's emoji stickers from Noto Color Emoji (run once, not at run time).

Usage: python robustness/assets/make_emoji.py [/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf]
(Debian package fonts-noto-color-emoji). Writes one RGBA PNG per emoji, trimmed to its visible
pixels, into robustness/assets/emoji/. Licence: see emoji/LICENSE-NotoColorEmoji.txt (OFL-1.1).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
CBDT_SIZE = 109  # the only bitmap strike size Noto Color Emoji carries

# The ten stickers the study used (same names), by code point.
EMOJI = {
    "clown_face": "\U0001f921",
    "fire": "\U0001f525",
    "heart_eyes": "\U0001f60d",
    "joy": "\U0001f602",
    "pensive": "\U0001f614",
    "rolling_on_the_floor_laughing": "\U0001f923",
    "skull": "\U0001f480",
    "sunglasses": "\U0001f60e",
    "tada": "\U0001f389",
    "thinking_face": "\U0001f914",
}


def render(char: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    """Draw one emoji on a transparent canvas and trim it to its alpha bounding box."""
    canvas = Image.new("RGBA", (CBDT_SIZE * 2, CBDT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 8), char, font=font, embedded_color=True)
    bbox = canvas.getchannel("A").getbbox()
    assert bbox is not None, f"emoji {char!r} rendered empty"
    return canvas.crop(bbox)


def main(font_path: str = DEFAULT_FONT) -> None:
    font = ImageFont.truetype(font_path, CBDT_SIZE)
    out_dir = Path(__file__).resolve().parent / "emoji"
    out_dir.mkdir(exist_ok=True)
    for name, char in EMOJI.items():
        render(char, font).save(out_dir / f"{name}.png", optimize=True)
        print(out_dir / f"{name}.png")


if __name__ == "__main__":
    main(*sys.argv[1:2])
