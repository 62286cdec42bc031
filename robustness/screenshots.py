"""Screenshot condition: the image shown as an Instagram-style feed post on a phone.

All chrome is drawn here with PIL primitives (no third-party artwork): status bar, top bar,
header with a round gradient avatar carrying initials and a random username, the photo scaled
to the post width, action icons (heart, comment, share, bookmark) with counts, caption and time,
bottom navigation bar. Layout sizes are CSS pixels multiplied by the device pixel ratio (dpr);
the study rendered 375 px wide at dpr 1 and saved PNG (roger-study README §2.3).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
from PIL import Image, ImageDraw

from robustness import _assets
from robustness.registry import Condition, register

POST_WIDTH = 375  # CSS px, the study's container width
STATUS_H, TOPBAR_H, HEADER_H, ACTIONS_H, NAV_H = 20, 44, 48, 44, 50  # CSS px
FOOTER_H = 58  # caption line + time line, CSS px
FONT, FONT_BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"
INK, GREY, RED, BLUE = (38, 38, 38), (142, 142, 142), (237, 73, 86), (0, 149, 246)
CONSONANTS, VOWELS = "bcdfghjklmnprstvwz", "aeiou"
TIME_UNITS = ("minutes", "hours", "days", "weeks", "months")
MAX_COUNT = 2_000_000  # action counts drawn uniformly in [0, MAX_COUNT], as the study


def pseudo_word(rng: np.random.Generator, n: int) -> str:
    """Alternating consonant/vowel word of n letters, capitalised."""
    start = int(rng.integers(2))
    letters = [(CONSONANTS if (i + start) % 2 == 0 else VOWELS) for i in range(n)]
    return "".join(s[int(rng.integers(len(s)))] for s in letters).capitalize()


def format_count(n: int) -> str:
    """Instagram-style count: 123, 45.6K, 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}K"
    return str(n)


def _choices(rng: np.random.Generator) -> dict:
    """Every random choice of one screenshot (recorded as the per-image params)."""
    username = pseudo_word(rng, int(rng.integers(4, 9))) + pseudo_word(rng, int(rng.integers(4, 9)))
    caption_len = int(rng.integers(8, 21))
    return {
        "clock": f"{int(rng.integers(1, 13))}:{int(rng.integers(0, 60)):02d}",
        "signal_bars": int(rng.integers(1, 5)),
        "network": ["3G", "4G", "LTE", "5G"][int(rng.integers(4))],
        "battery": round(float(rng.uniform(0.05, 1.0)), 2),
        "badges": {"activity": bool(rng.integers(2)), "messages": bool(rng.integers(2))},
        "username": username,
        "avatar_colors": [[int(c) for c in rng.integers(40, 230, 3)] for _ in range(2)],
        "likes": int(rng.integers(0, MAX_COUNT + 1)),
        "comments": int(rng.integers(0, MAX_COUNT + 1)),
        "shares": int(rng.integers(0, MAX_COUNT + 1)),
        "saved": bool(rng.integers(2)),
        "caption": "".join(chr(97 + int(c)) for c in rng.integers(0, 26, caption_len)),
        "posted": f"{int(rng.integers(1, 100))} {TIME_UNITS[int(rng.integers(5))]} ago",
    }


def _avatar(d: int, colors: list[list[int]], initials: str, s: int) -> Image.Image:
    """Round avatar of diameter d: diagonal two-colour gradient with white initials."""
    t = np.add.outer(np.arange(d), np.arange(d)) / max(1, 2 * d - 2)  # (d, d) in [0, 1]
    c0, c1 = np.array(colors[0], float), np.array(colors[1], float)
    grad = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.uint8)  # (d, d, 3)
    disc = Image.fromarray(grad, "RGB").convert("RGBA")
    mask = Image.new("L", (d, d), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, d - 1, d - 1), fill=255)
    disc.putalpha(mask)
    font, _ = _assets.font(FONT_BOLD, int(d * 0.42))
    ImageDraw.Draw(disc).text((d / 2, d / 2), initials, font=font, fill="white", anchor="mm")
    return disc


def _heart(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, width: int, fill=None, outline=INK) -> None:
    t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = [(cx + r * a / 17, cy + r * b / 17) for a, b in zip(x, y, strict=True)]
    draw.polygon(pts, fill=fill, outline=outline, width=width)


def _comment(draw, cx, cy, r, width) -> None:
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=INK, width=width)
    draw.line(
        [
            (cx - r * 0.75, cy + r * 0.65),
            (cx - r * 1.05, cy + r * 1.05),
            (cx - r * 0.35, cy + r * 0.95),
        ],
        fill=INK,
        width=width,
        joint="curve",
    )


def _plane(draw, cx, cy, r, width) -> None:
    pts = [
        (cx - r, cy - r * 0.8),
        (cx + r, cy - r * 0.8),
        (cx - r * 0.1, cy + r),
        (cx - r * 0.3, cy),
    ]
    draw.polygon(pts, outline=INK, width=width)
    draw.line([(cx - r * 0.3, cy), (cx + r, cy - r * 0.8)], fill=INK, width=width)


def _bookmark(draw, cx, cy, r, width, filled: bool) -> None:
    pts = [
        (cx - r * 0.7, cy - r),
        (cx + r * 0.7, cy - r),
        (cx + r * 0.7, cy + r),
        (cx, cy + r * 0.45),
        (cx - r * 0.7, cy + r),
    ]
    draw.polygon(pts, fill=INK if filled else None, outline=INK, width=width)


def _status_bar(draw, W: int, s: int, c: dict) -> None:
    font, _ = _assets.font(FONT_BOLD, 12 * s)
    draw.text((16 * s, 10 * s), c["clock"], font=font, fill=INK, anchor="lm")
    x = W - 92 * s
    for i in range(4):  # signal bars
        h = (3 + 2 * i) * s
        fill = INK if i < c["signal_bars"] else (200, 200, 200)
        draw.rectangle((x + i * 5 * s, 15 * s - h, x + i * 5 * s + 3 * s, 15 * s), fill=fill)
    small, _ = _assets.font(FONT_BOLD, 10 * s)
    draw.text((x + 24 * s, 10 * s), c["network"], font=small, fill=INK, anchor="lm")
    bx0, bx1 = W - 40 * s, W - 16 * s
    draw.rounded_rectangle((bx0, 5 * s, bx1, 15 * s), radius=2 * s, outline=INK, width=s)
    level = bx0 + 2 * s + (bx1 - bx0 - 4 * s) * c["battery"]
    draw.rectangle((bx0 + 2 * s, 7 * s, level, 13 * s), fill=INK if c["battery"] > 0.2 else RED)
    draw.rectangle((bx1 + s, 8 * s, bx1 + 3 * s, 12 * s), fill=INK)


def _top_bar(draw, W: int, y: int, s: int, c: dict) -> None:
    font, _ = _assets.font(FONT_BOLD, 18 * s)
    cy = y + TOPBAR_H * s // 2
    draw.text((14 * s, cy), "For You", font=font, fill=INK, anchor="lm")
    tw = draw.textlength("For You", font=font)
    ax = 14 * s + tw + 6 * s
    draw.line(
        [(ax, cy - 2 * s), (ax + 4 * s, cy + 2 * s), (ax + 8 * s, cy - 2 * s)],
        fill=INK,
        width=2 * s,
    )
    _heart(draw, W - 64 * s, cy, 11 * s, 2 * s)
    _plane(draw, W - 24 * s, cy, 10 * s, 2 * s)
    for on, x in ((c["badges"]["activity"], W - 54 * s), (c["badges"]["messages"], W - 14 * s)):
        if on:
            draw.ellipse((x - 4 * s, cy - 12 * s, x + 4 * s, cy - 4 * s), fill=RED)


def _header(canvas: Image.Image, draw, W: int, y: int, s: int, c: dict, initials: str) -> None:
    d = 32 * s
    av = _avatar(d, c["avatar_colors"], initials, s)
    canvas.paste(av, (12 * s, y + (HEADER_H * s - d) // 2), av)
    font, _ = _assets.font(FONT_BOLD, 13 * s)
    cy = y + HEADER_H * s // 2
    draw.text((12 * s + d + 10 * s, cy), c["username"].lower(), font=font, fill=INK, anchor="lm")
    for i in range(3):
        x = W - 24 * s + i * 5 * s
        draw.ellipse((x - 1.5 * s, cy - 1.5 * s, x + 1.5 * s, cy + 1.5 * s), fill=INK)


def _actions(draw, W: int, y: int, s: int, c: dict) -> None:
    font, _ = _assets.font(FONT_BOLD, 13 * s)
    cy, r, x = y + ACTIONS_H * s // 2, 11 * s, 14 * s
    for kind, count in (("heart", c["likes"]), ("comment", c["comments"]), ("share", c["shares"])):
        cx = x + r
        if kind == "heart":
            _heart(draw, cx, cy, r, 2 * s)
        elif kind == "comment":
            _comment(draw, cx, cy, r * 0.9, 2 * s)
        else:
            _plane(draw, cx, cy, r * 0.9, 2 * s)
        text = format_count(count)
        draw.text((cx + r + 5 * s, cy), text, font=font, fill=INK, anchor="lm")
        x = cx + r + 5 * s + draw.textlength(text, font=font) + 14 * s
    _bookmark(draw, W - 24 * s, cy, 10 * s, 2 * s, c["saved"])


def _footer(draw, y: int, s: int, c: dict) -> None:
    bold, _ = _assets.font(FONT_BOLD, 13 * s)
    regular, _ = _assets.font(FONT, 13 * s)
    small, _ = _assets.font(FONT, 11 * s)
    name = c["username"].lower()
    draw.text((14 * s, y + 14 * s), name, font=bold, fill=INK, anchor="lm")
    nx = 14 * s + draw.textlength(name, font=bold) + 6 * s
    draw.text((nx, y + 14 * s), c["caption"], font=regular, fill=INK, anchor="lm")
    draw.text((14 * s, y + 38 * s), c["posted"], font=small, fill=GREY, anchor="lm")


def _nav_bar(canvas: Image.Image, draw, W: int, y: int, s: int, c: dict, initials: str) -> None:
    draw.line([(0, y), (W, y)], fill=(219, 219, 219), width=s)
    cy, r, w2 = y + NAV_H * s // 2, 11 * s, 2 * s
    xs = [W * (i + 0.5) / 5 for i in range(5)]
    x = xs[0]  # home
    draw.polygon(
        [
            (x - r, cy - 1 * s),
            (x, cy - r),
            (x + r, cy - 1 * s),
            (x + r * 0.8, cy - 1 * s),
            (x + r * 0.8, cy + r),
            (x - r * 0.8, cy + r),
            (x - r * 0.8, cy - 1 * s),
        ],
        outline=INK,
        width=w2,
    )
    x = xs[1]  # search
    draw.ellipse((x - r, cy - r, x + r * 0.5, cy + r * 0.5), outline=INK, width=w2)
    draw.line([(x + r * 0.35, cy + r * 0.35), (x + r, cy + r)], fill=INK, width=w2)
    x = xs[2]  # new post
    draw.rounded_rectangle((x - r, cy - r, x + r, cy + r), radius=5 * s, outline=INK, width=w2)
    draw.line([(x, cy - r * 0.5), (x, cy + r * 0.5)], fill=INK, width=w2)
    draw.line([(x - r * 0.5, cy), (x + r * 0.5, cy)], fill=INK, width=w2)
    x = xs[3]  # reels
    draw.rounded_rectangle((x - r, cy - r, x + r, cy + r), radius=5 * s, outline=INK, width=w2)
    draw.polygon([(x - r * 0.3, cy - r * 0.4), (x + r * 0.5, cy), (x - r * 0.3, cy + r * 0.4)], fill=INK)
    d = 26 * s  # profile
    av = _avatar(d, c["avatar_colors"], initials, s)
    canvas.paste(av, (int(xs[4] - d / 2), int(cy - d / 2)), av)


def screenshot(img: Image.Image, rng: np.random.Generator, *, dpr: int = 1) -> tuple[Image.Image, dict]:
    """Render ``img`` as a feed post screenshot, ``POST_WIDTH * dpr`` px wide, RGB."""
    s = int(dpr)
    c = _choices(rng)
    W = POST_WIDTH * s
    photo_h = max(1, round(W * img.height / img.width))
    photo = img.resize((W, photo_h), Image.Resampling.LANCZOS)
    top = (STATUS_H + TOPBAR_H + HEADER_H) * s
    H = top + photo_h + (ACTIONS_H + FOOTER_H + NAV_H) * s
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    initials = "".join(ch for ch in c["username"] if ch.isupper())[:2]
    _status_bar(draw, W, s, c)
    _top_bar(draw, W, STATUS_H * s, s, c)
    _header(canvas, draw, W, (STATUS_H + TOPBAR_H) * s, s, c, initials)
    canvas.paste(photo, (0, top))
    _actions(draw, W, top + photo_h, s, c)
    _footer(draw, top + photo_h + ACTIONS_H * s, s, c)
    _nav_bar(canvas, draw, W, H - NAV_H * s, s, c, initials)
    params = {
        **c,
        "dpr": s,
        "photo_box": [0, top, W, top + photo_h],
        "photo_resample": "lanczos",
        "size": [W, H],
    }
    return canvas, params


for _dpr in (1, 2, 3):
    register(
        Condition(
            id="screenshot" if _dpr == 1 else f"screenshot/dpr{_dpr}",
            family="screenshot",
            description=f"Instagram-style feed post screenshot, {POST_WIDTH} px wide at dpr {_dpr}, PNG",
            params={"dpr": _dpr, "post_width": POST_WIDTH},
            fn=partial(screenshot, dpr=_dpr),
            file_format="PNG",
        )
    )
