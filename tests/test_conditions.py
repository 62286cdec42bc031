"""Every registered condition: output mode and size, determinism, recorded params, input modes,
tiny and large inputs; plus the registry, the meme/screenshot specifics and the batch CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustness import __main__ as cli
from robustness import _assets, memes
from robustness._image import to_rgb
from robustness.apply import apply_condition, derive_file
from robustness.filters import FILTER_NAMES, apply_filter
from robustness.registry import CONDITIONS, Condition, get, list_conditions, register, seed_for

CHROME_CSS_PX = 20 + 44 + 48 + 44 + 58 + 50  # screenshot UI height around the photo at dpr 1
REQUIRED = [
    "original",
    "instagram-filter",
    "instagram-filter/no-jpeg",
    "instagram/clarendon",
    "meme",
    "screenshot",
    "screenshot/dpr2",
    "screenshot/dpr3",
    "resample/x0.5-x2-lanczos",
    "jpeg/q50",
    "jpeg/q75",
    "jpeg/q90",
    "webp/q75",
    "webp/q90",
    "resize/x0.5",
    "resize/x0.75",
    "resize/x1.5",
    "crop/center-0.8",
    "blur/s1.0",
    "blur/s2.0",
    "noise/s5",
    "noise/s10",
    "social/1080-q80",
    "social/2048-q85",
]
RANDOM = ["instagram-filter", "meme", "screenshot", "noise/s5"]  # outputs depend on the seed


def expected_size(cid: str, w: int, h: int) -> tuple[int, int]:
    """The documented output size of each condition for a w x h input."""
    if m := re.fullmatch(r"resize/x([\d.]+)", cid):
        s = float(m.group(1))
        return max(1, round(w * s)), max(1, round(h * s))
    if cid == "crop/center-0.8":
        return round(w * 0.8), round(h * 0.8)
    if m := re.fullmatch(r"social/(\d+)-q\d+", cid):
        s = min(1.0, int(m.group(1)) / max(w, h))
        return (max(1, round(w * s)), max(1, round(h * s))) if s < 1 else (w, h)
    if cid.startswith("screenshot"):
        dpr = int(cid[-1]) if cid != "screenshot" else 1
        pw = 375 * dpr
        return pw, CHROME_CSS_PX * dpr + max(1, round(pw * h / w))
    return w, h


def photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A smooth gradient with some texture, RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(1, w - 1), yy * 255 / max(1, h - 1), np.full((h, w), 128.0)], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def small() -> Image.Image:
    return photo(64, 48)


def test_required_ids_registered():
    missing = [c for c in REQUIRED if c not in CONDITIONS]
    assert not missing
    assert len([c for c in CONDITIONS if c.startswith("instagram/") and "no-jpeg" not in c]) == 40
    assert get("original").family == "identity"
    assert [c.id for c in list_conditions()] == sorted(CONDITIONS)


def test_registry_errors():
    with pytest.raises(KeyError, match="Unknown condition 'jpeg/q1'; did you mean .*jpeg/q"):
        get("jpeg/q1")
    with pytest.raises(ValueError, match="already registered"):
        register(get("jpeg/q75"))
    with pytest.raises(ValueError, match="file_format"):
        Condition("x", "x", "x", {}, lambda im, rng: (im, {}), file_format="GIF")


def test_seed_for_is_stable_sha256():
    assert seed_for("a/b.png", "meme") == 71828697323987813  # pinned: a change breaks reruns
    digest = hashlib.sha256(b"meme\x00a/b.png").digest()
    assert seed_for("a/b.png", "meme") == int.from_bytes(digest[:8], "big") >> 1
    assert seed_for("a/b.png", "meme") != seed_for("a/c.png", "meme")
    assert seed_for("a/b.png", "meme") != seed_for("a/b.png", "screenshot")


@pytest.mark.parametrize("cid", sorted(CONDITIONS))
def test_condition_mode_size_determinism_params(cid, small):
    out, params = apply_condition(small, cid, "set/img001.png")
    assert out.mode == "RGB"
    assert out.size == expected_size(cid, *small.size)
    assert params["seed"] == seed_for("set/img001.png", cid)
    assert params["format"] == get(cid).file_format
    again, params2 = apply_condition(small.copy(), cid, "set/img001.png")
    assert np.array_equal(np.asarray(out), np.asarray(again))
    assert params == params2
    json.dumps(params)  # params must be JSON-serialisable (stored per image)
    if cid.startswith("instagram"):
        assert params["filter"] in FILTER_NAMES


@pytest.mark.parametrize("cid", RANDOM)
def test_random_conditions_depend_on_the_key(cid, small):
    a, pa = apply_condition(small, cid, "k1")
    b, pb = apply_condition(small, cid, "k2")
    differs = {k: pa[k] for k in pa if k != "seed" and pa[k] != pb.get(k)}
    assert differs or not np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    "cid", ["original", "jpeg/q75", "webp/q75", "blur/s1.0", "noise/s5", "resample/x0.5-x2-lanczos"]
)
def test_conditions_change_pixels_as_documented(cid, small):
    out, _ = apply_condition(small, cid, "k")
    diff = np.abs(np.asarray(out, float) - np.asarray(small, float))
    if cid == "original":
        assert diff.max() == 0
    else:
        assert 0 < diff.mean() < 40


def test_lossy_ids_are_encoded_and_derived_file_matches(tmp_path, small):
    src = tmp_path / "in.png"
    small.save(src)
    for cid, ext in [
        ("jpeg/q75", ".jpg"),
        ("instagram-filter", ".jpg"),
        ("webp/q90", ".webp"),
        ("instagram-filter/no-jpeg", ".png"),
        ("meme", ".png"),
    ]:
        d = derive_file(src, cid, tmp_path / cid.replace("/", "_"), image_key="in.png")
        assert d.path.suffix == ext and d.path.exists()
        with Image.open(d.path) as saved:
            assert saved.format == get(cid).file_format
            on_disk = np.asarray(saved.convert("RGB"))
        mem, params = apply_condition(small, cid, "in.png")
        assert np.array_equal(on_disk, np.asarray(mem))  # returned image == decoded file
        assert (d.width, d.height) == mem.size and d.params == params and d.seed == params["seed"]


def _modes(img: Image.Image) -> dict[str, Image.Image]:
    gray16 = (np.asarray(img.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    return {
        "L": img.convert("L"),
        "LA": img.convert("LA"),
        "P": img.convert("P"),
        "RGBA": img.convert("RGBA"),
        "CMYK": img.convert("CMYK"),
        "I;16": Image.fromarray(gray16),
    }


@pytest.mark.parametrize(
    "cid",
    [
        "original",
        "jpeg/q75",
        "instagram/clarendon",
        "meme",
        "screenshot",
        "noise/s5",
        "crop/center-0.8",
    ],
)
@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16"])
def test_input_modes(cid, mode, small):
    img = _modes(small)[mode]
    assert img.mode == mode
    out, params = apply_condition(img, cid, "k")
    assert out.mode == "RGB" and out.size == expected_size(cid, *small.size)


def test_to_rgb_scales_16_bit():
    arr = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    assert np.asarray(to_rgb(img))[0, :, 0].tolist() == [0, 100, 255]
    rgba = Image.new("RGBA", (2, 2), (10, 20, 30, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (10, 20, 30)  # alpha dropped like .convert("RGB")


@pytest.mark.parametrize("cid", sorted(c for c in CONDITIONS if not c.startswith("instagram/")))
def test_tiny_50x50(cid):
    out, _ = apply_condition(photo(50, 50, seed=1), cid, "tiny")
    assert out.mode == "RGB" and out.size == expected_size(cid, 50, 50)


@pytest.fixture(scope="module")
def large() -> Image.Image:
    return photo(4000, 3000, seed=2)


@pytest.mark.parametrize(
    "cid",
    ["jpeg/q75", "resize/x0.5", "social/1080-q80", "instagram/clarendon", "meme", "screenshot"],
)
def test_large_4000x3000(cid, large):
    out, params = apply_condition(large, cid, "large")
    assert out.mode == "RGB" and out.size == expected_size(cid, 4000, 3000)
    if cid == "meme":
        assert 150 <= params["font_size"] <= 300


def test_meme_follows_the_recipe(small):
    img = photo(400, 300, seed=5)
    for key in ("a", "b", "c", "d"):
        _, p = apply_condition(img, "meme", key)
        assert p["caption"] == p["caption"].upper() and len(p["caption"]) >= 20
        assert int(0.05 * 300) <= p["font_size"] <= int(0.10 * 300)
        assert p["font"] in memes.MEME_FONTS
        assert 5 <= len(p["stickers"]) <= 10
        for s in p["stickers"]:
            assert int(0.04 * 300) <= s["size"] <= int(0.16 * 300)
            assert s["emoji"] in {name for name, _ in _assets.emoji()}
        assert " ".join(line["text"] for line in p["lines"]) == " ".join(p["caption"].split())
        assert abs(p["offset_y"]) <= int(0.04 * 300)


def test_scramble_keeps_outer_letters():
    rng = np.random.default_rng(0)
    text = "And the earth was without form, and void"
    out = memes.scramble(text, rng)
    for a, b in zip(text.split(), out.split(), strict=True):
        assert a[0] == b[0] and a[-1] == b[-1] and sorted(a) == sorted(b)
    assert memes.scramble("And the was", rng) == "And the was"


def test_caption_corpus_and_font_fallback():
    assert len(memes.sentences()) > 500
    assert all(len(s) >= 20 for s in memes.sentences())
    font, name = _assets.font("no-such-font.ttf", 17)
    assert name == _assets.DEFAULT_FONT and font.size == 17
    assert len(_assets.emoji()) == 10


def test_screenshot_records_its_choices():
    img = photo(300, 400, seed=3)
    out, p = apply_condition(img, "screenshot/dpr2", "k")
    assert out.width == 750 and p["dpr"] == 2
    for key in (
        "username",
        "clock",
        "likes",
        "comments",
        "shares",
        "saved",
        "caption",
        "posted",
        "avatar_colors",
        "signal_bars",
        "battery",
    ):
        assert key in p
    assert 0 <= p["likes"] <= 2_000_000
    left, top, right, bottom = p["photo_box"]
    assert (right - left, bottom - top) == (750, 1000)
    # the photo region really holds the (downscaled) photo
    region = np.asarray(out.crop(tuple(p["photo_box"])), float)
    ref = np.asarray(img.resize((750, 1000), Image.Resampling.LANCZOS), float)
    assert np.abs(region - ref).mean() < 1.0


# --- batch CLI -------------------------------------------------------------------------------


@pytest.fixture()
def image_tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    photo(40, 30, 1).save(root / "real" / "a.jpg", quality=95)
    photo(40, 30, 2).convert("L").save(root / "real" / "b.tif")
    photo(30, 40, 3).save(root / "fake" / "c.png")
    (root / "fake" / "broken.png").write_bytes(b"not an image at all")
    return root


def test_cli_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(CONDITIONS)
    assert any(line.startswith("jpeg/q75 ") for line in out)


def test_cli_apply_folder_reports_broken_image_and_goes_on(image_tree, tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(
        [
            "apply",
            "--condition",
            "jpeg/q75",
            "--input",
            str(image_tree),
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 1  # one error row
    assert "broken.png" in capsys.readouterr().err
    rows = list(csv.DictReader(open(out / "images.csv")))
    assert sorted((r["image"], r["class"], r["split"]) for r in rows) == [
        ("fake/c.jpg", "1", "test"),
        ("real/a.jpg", "0", "test"),
        ("real/b.jpg", "0", "test"),
    ]
    assert all((out / r["image"]).exists() for r in rows)
    doc = json.loads((out / "images.params.json").read_text())
    assert doc["condition"]["id"] == "jpeg/q75"
    assert [e["image"] for e in doc["errors"]] == ["fake/broken.png"]
    assert {i["source"] for i in doc["images"]} == {"fake/c.png", "real/a.jpg", "real/b.tif"}
    assert all("seed" in i["params"] for i in doc["images"])


def test_cli_apply_csv_refuses_escaping_paths(image_tree, tmp_path):
    (tmp_path / "secret.png").write_bytes(b"")
    lst = tmp_path / "list.csv"
    lst.write_text(
        "image,class,split\nreal/a.jpg,0,test\n../secret.png,1,test\n"
        "fake/c.png,1,test\nfake/missing.png,1,test\nreal/a.jpg,7,test\n"
    )
    out = tmp_path / "derived"
    rc = cli.main(
        [
            "apply",
            "--condition",
            "meme",
            "--input",
            str(lst),
            "--input-csv-root-dir",
            str(image_tree),
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 1
    rows = list(csv.DictReader(open(out / "list.csv")))
    assert [r["image"] for r in rows] == ["real/a.png", "fake/c.png"]
    errors = json.loads((out / "list.params.json").read_text())["errors"]
    assert len(errors) == 3
    assert "escapes the root" in errors[0]["error"]
    assert "file not found" in errors[1]["error"]  # the capped decoder says so
    assert "class must be 0 or 1" in errors[2]["error"]
    assert not (tmp_path / "secret.png").read_bytes()  # untouched


def test_cli_apply_unknown_condition(tmp_path, capsys):
    assert (
        cli.main(
            [
                "apply",
                "--condition",
                "nope",
                "--input",
                str(tmp_path),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "Unknown condition 'nope'" in capsys.readouterr().err


def test_cli_apply_refuses_output_name_collisions_and_takes_absolute_paths(image_tree, tmp_path):
    photo(20, 20, 4).save(image_tree / "real" / "a.png")  # a.jpg and a.png both -> real/a.png
    lst = tmp_path / "abs.csv"
    lst.write_text(f"image,class,split\n{image_tree / 'fake' / 'c.png'},1,test\n")
    out = tmp_path / "o1"
    assert (
        cli.main(
            [
                "apply",
                "--condition",
                "original",
                "--input",
                str(lst),
                "--input-csv-root-dir",
                str(image_tree),
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert [r["image"] for r in csv.DictReader(open(out / "abs.csv"))] == ["fake/c.png"]
    out2 = tmp_path / "o2"
    assert (
        cli.main(
            [
                "apply",
                "--condition",
                "original",
                "--input",
                str(image_tree),
                "--output",
                str(out2),
                "--no-progress",
            ]
        )
        == 1
    )
    errors = json.loads((out2 / "images.params.json").read_text())["errors"]
    assert any("would overwrite" in e["error"] and e["image"] == "real/a.png" for e in errors)


PILGRAM_REFERENCE = Path(__file__).parent / "fixtures" / "pilgram2-2.0.6"


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_pilgram2_filters_match_the_study_version(name: str) -> None:
    """Every filter gives, byte for byte, the pixels pilgram2 2.0.6 (the study's version) gave;
    2.0.10 changed poprocket."""
    import importlib.metadata

    assert importlib.metadata.version("pilgram2") == "2.0.6"
    with Image.open(PILGRAM_REFERENCE / "source.png") as src, Image.open(PILGRAM_REFERENCE / f"{name}.png") as want:
        got = apply_filter(src.convert("RGB"), name)
        assert got.size == want.size and got.mode == want.mode == "RGB"
        assert got.tobytes() == want.tobytes()
