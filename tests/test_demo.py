"""Demo data set: a miniature build (3 photos, tiny crops, a few autoencoder steps)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from spai.demo.build import BuildConfig, assign_splits, build_demo_set
from spai.demo.generator import AutoencoderConfig
from spai.demo.sources import PhotoSource, discover_sources

MINI_AE = AutoencoderConfig(width=8, stages=2, latent_channels=4, crop=32, batch_size=4, steps=5)


def _sources() -> list[PhotoSource]:
    wanted = {"skimage/chelsea", "skimage/coffee", "skimage/astronaut", "sklearn/china"}
    found = [s for s in discover_sources() if s.id in wanted]
    assert len(found) == 4, "scikit-image and scikit-learn ship these photos"
    return found


def _mini(out: Path, seed: int = 0) -> BuildConfig:
    return BuildConfig(
        output=out,
        seed=seed,
        crop_sizes=((64, 64), (96, 64), (64, 80)),
        pixels_per_crop=10**9,
        min_crops=2,
        max_crops=2,
        min_photos=3,
        autoencoder=MINI_AE,
    )


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="") as f:
        return list(csv.DictReader(f))


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))
    }


def test_mini_build_splits_by_source_and_pairs_real_with_fake(tmp_path: Path) -> None:
    result = build_demo_set(_mini(tmp_path / "demo"), _sources(), log=lambda _: None)
    rows = _rows(result.csv_path)
    assert list(rows[0])[:3] == ["image", "class", "split"]
    assert len(rows) == 4 * 2 * 2  # 4 photos x 2 crops x (real, fake)
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(r["source"], set()).add(r["split"])
        assert (tmp_path / "demo" / r["image"]).is_file()
    assert all(len(s) == 1 for s in split_of.values()), split_of  # no photo in two splits
    assert {next(iter(s)) for s in split_of.values()} == {"train", "val", "test"}
    pairs: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        pairs.setdefault(r["pair"], []).append(r)
    for pair in pairs.values():
        assert sorted(r["class"] for r in pair) == ["0", "1"]
        assert len({r["split"] for r in pair}) == 1
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["seed"] == 0 and len(manifest["sources"]) == 4
    assert all(s["licence"] for s in manifest["sources"])
    assert "not a benchmark" in (tmp_path / "demo" / "README.md").read_text()


def test_mini_build_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = build_demo_set(_mini(tmp_path / "a"), _sources(), log=lambda _: None)
    b = build_demo_set(_mini(tmp_path / "b"), _sources(), log=lambda _: None)
    build_demo_set(_mini(tmp_path / "c", seed=1), _sources(), log=lambda _: None)
    assert a.csv_path.read_bytes() == b.csv_path.read_bytes()
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_unreadable_photo_is_skipped_with_its_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    sources = _sources() + [PhotoSource("test/bad", bad, "test", "none")]
    result = build_demo_set(_mini(tmp_path / "demo"), sources, log=lambda _: None)
    assert "test/bad" in result.skipped and "cannot decode" in result.skipped["test/bad"]
    assert "test/bad" not in result.used


def test_too_few_scenes_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 3 scenes"):
        build_demo_set(_mini(tmp_path / "demo"), _sources()[:2], log=lambda _: None)


def test_fewer_photos_than_the_card_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    (out / "train").mkdir(parents=True)
    (out / "train" / "kept.png").write_bytes(b"a previous build")
    cfg = dataclasses.replace(_mini(out), min_photos=5)
    with pytest.raises(ValueError, match=r"found 4 usable photos, the demo set needs 5 .*spai/demo/photos"):
        build_demo_set(cfg, _sources(), log=lambda _: None)
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["kept.png"]


def test_build_cli_on_a_machine_with_only_the_pip_photos_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's fresh machine: only the 10 scikit-learn/scikit-image photos were found."""
    from click.testing import CliRunner

    import spai.demo.build
    from spai.demo.__main__ import cli

    pip_only = [s for s in discover_sources() if s.origin in ("sklearn", "skimage")]
    monkeypatch.setattr(spai.demo.build, "discover_sources", lambda: pip_only)
    res = CliRunner().invoke(cli, ["build", "--seed", "1", "--output", str(tmp_path / "demo")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "found 10 usable photos, the demo set needs 33" in res.output
    assert not (tmp_path / "demo").exists()
    card = json.loads((Path(__file__).parents[1] / "weights" / "demo" / "eval.json").read_text())
    assert BuildConfig().min_photos == card["data"]["photos"]


def test_assign_splits_is_exclusive_balanced_and_seeded() -> None:
    crops = {f"p{i}": 10 for i in range(10)}
    s = assign_splits(crops, seed=0)
    assert set(s) == set(crops)
    count = {k: sum(1 for v in s.values() if v == k) for k in ("train", "val", "test")}
    assert count == {"train": 6, "val": 2, "test": 2}
    assert s == assign_splits(crops, seed=0) and s != assign_splits(crops, seed=3)


def test_stereo_pair_shares_a_split() -> None:
    moto = [s for s in discover_sources() if s.id.startswith("skimage/motorcycle")]
    assert len(moto) == 2 and len({s.split_key for s in moto}) == 1


def test_reproduce_trains_evaluates_and_writes_the_card(tmp_path: Path) -> None:
    """The one-command pipeline at miniature scale: reused set -> CLI training -> card."""
    from spai.demo.reproduce import TARGET_AUC, reproduce
    from spai.detector import Detector

    cfg = BuildConfig(
        output=tmp_path / "demo",
        seed=0,
        crop_sizes=((224, 224), (256, 224)),
        pixels_per_crop=10**9,
        min_crops=1,
        max_crops=1,
        min_photos=4,
        autoencoder=MINI_AE,
    )
    build_demo_set(cfg, _sources(), log=lambda _: None)
    demo_yaml = Path(__file__).parents[1] / "configs" / "demo.yaml"
    fast = tmp_path / "fast.yaml"  # the shipped demo config, cut to one short epoch
    fast.write_text(
        f"BASE: ['{demo_yaml.as_posix()}']\nDATA:\n  BATCH_SIZE: 2\n  AUGMENTED_VIEWS: 2\nTRAIN:\n  WARMUP_EPOCHS: 0\n"
    )
    info = reproduce(
        tmp_path / "demo",
        tmp_path / "weights",
        tmp_path / "runs" / "demo",
        epochs=1,
        skip_build=True,
        conditions=("original", "jpeg/q75", "no/such"),
        log=lambda _: None,
        config=fast,
    )
    weights = tmp_path / "weights" / "spai_demo.pth"
    assert (
        Detector.load(weights, device="cpu")
        .score_one(Image.open(tmp_path / "demo" / _rows(tmp_path / "demo" / "demo.csv")[0]["image"]))
        .ok
    )
    assert info["epochs"] == 1 and info["build_note"].startswith("as recorded")
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert info["build_s"] == manifest["timing_s"]["total"]
    test = info["test"]
    assert test["original"]["n"] == test["jpeg/q75"]["n"] > 0 and "error" in test["no/such"]
    card = (tmp_path / "weights" / "MODEL_CARD.md").read_text()
    assert f"{test['original']['auc']:.3f}" in card and f"at least {TARGET_AUC}" in card
    assert json.loads((tmp_path / "weights" / "eval.json").read_text())["sha256"] in card


def test_evaluate_remeasures_the_shipped_model_and_keeps_its_training_facts(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from spai.demo.__main__ import cli

    test_reproduce_trains_evaluates_and_writes_the_card(tmp_path)
    out = tmp_path / "weights"
    before = json.loads((out / "eval.json").read_text())
    res = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--data",
            str(tmp_path / "demo"),
            "--output",
            str(out),
            "--condition",
            "original",
            "--condition",
            "meme",
        ],
    )
    assert res.exit_code == 0, res.output
    after = json.loads((out / "eval.json").read_text())
    assert list(after["test"]) == ["original", "meme"]
    assert after["test"]["original"] == before["test"]["original"]  # same model, same images
    assert {k: v for k, v in after.items() if k != "test"} == {k: v for k, v in before.items() if k != "test"}
    assert "| `meme` |" in (out / "MODEL_CARD.md").read_text()
    (out / "spai_demo.pth").write_bytes((out / "spai_demo.pth").read_bytes() + b"x")
    res = CliRunner().invoke(cli, ["evaluate", "--data", str(tmp_path / "demo"), "--output", str(out)])
    assert res.exit_code != 0 and "sha256 differs" in str(res.exception)


def test_evaluate_build_measures_another_seed_and_adds_it_to_the_card(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from spai.demo.__main__ import cli

    test_reproduce_trains_evaluates_and_writes_the_card(tmp_path)
    out = tmp_path / "weights"
    before = json.loads((out / "eval.json").read_text())
    trained = set(before["data"]["train_photos"])
    assert trained and trained < {s.id for s in _sources()}
    other = tmp_path / "seed1"
    cfg = BuildConfig(
        output=other,
        seed=1,
        crop_sizes=((224, 224), (256, 224)),
        pixels_per_crop=10**9,
        min_crops=1,
        max_crops=1,
        min_photos=4,
        autoencoder=dataclasses.replace(MINI_AE, seed=1),
    )
    build_demo_set(cfg, _sources(), log=lambda _: None)
    res = CliRunner().invoke(
        cli,
        [
            "evaluate-build",
            "--data",
            str(other),
            "--output",
            str(out),
            "--condition",
            "original",
            "--condition",
            "meme",
        ],
    )
    assert res.exit_code == 0, res.output
    after = json.loads((out / "eval.json").read_text())
    assert {k: v for k, v in after.items() if k != "other_builds"} == before  # the card's own rows kept
    b = after["other_builds"]["1"]
    test_rows = [r for r in _rows(other / "demo.csv") if r["split"] == "test"]
    assert b["test_photos"] == sorted({r["source"] for r in test_rows})
    assert b["test_photos_not_trained_on"] == [s for s in b["test_photos"] if s not in trained]
    assert list(b["test"]) == ["original", "meme"] and b["test"]["original"]["n"] == len(test_rows)
    n_unseen = sum(r["source"] in b["test_photos_not_trained_on"] for r in test_rows)
    assert b["test"]["original"]["subset"]["n"] == n_unseen
    card = (out / "MODEL_CARD.md").read_text()
    assert "### `python -m spai.demo build --seed 1`" in card
    assert f"| `original` | {b['test']['original']['auc']:.4f} |" in card and "nan" not in card
    assert f"On the unmodified images: AUC **{b['test']['original']['auc']:.3f}**" in card
    res = CliRunner().invoke(cli, ["evaluate-build", "--data", str(tmp_path / "demo"), "--output", str(out)])
    assert res.exit_code != 0 and "built with seed 0, the model's own set" in res.output


def test_the_card_split_is_the_one_the_default_build_cuts() -> None:
    """evaluate-build reads the shipped model's training photos from its seed; the split must be
    the one its card counts."""
    from spai.demo.build import real_crops

    card = json.loads((Path(__file__).parents[1] / "weights" / "demo" / "eval.json").read_text())
    for split in ("train", "test"):
        assert len(real_crops(BuildConfig(seed=card["seed"]), split)) == card["data"]["counts"][split]["real"]


def test_real_crops_are_the_reals_a_build_writes(tmp_path: Path) -> None:
    """The demo model's calibration scores these in memory; they must be the build's reals."""
    import numpy as np

    from spai.demo.build import real_crops

    cfg = _mini(tmp_path / "demo")
    build_demo_set(cfg, _sources(), log=lambda _: None)
    built = {r["image"] for r in _rows(tmp_path / "demo" / "demo.csv") if r["split"] == "test" and r["class"] == "0"}
    crops = real_crops(cfg, "test", _sources())
    assert {name for name, _ in crops} == built and built
    for name, img in crops:
        on_disk = np.asarray(Image.open(tmp_path / "demo" / name).convert("RGB"))
        assert np.array_equal(np.asarray(img.convert("RGB")), on_disk), name


def test_the_card_photos_ship_with_the_repository_and_their_licences() -> None:
    """A fresh clone finds every photo the shipped model's card lists, without apt packages."""
    from spai.demo.sources import PHOTOS_DIR

    card = json.loads((Path(__file__).parents[1] / "weights" / "demo" / "eval.json").read_text())
    found = discover_sources()
    assert len(found) == card["data"]["photos"] == 33
    shipped = sorted(p for p in PHOTOS_DIR.rglob("*.jpg"))
    assert {s.path for s in found if s.origin.endswith("(Debian)")} == set(shipped)
    assert all(s.path.is_relative_to(PHOTOS_DIR) for s in found if s.origin.endswith("(Debian)"))
    listing = (PHOTOS_DIR / "README.md").read_text()
    for p in shipped:
        row = next(line for line in listing.splitlines() if f"`{p.relative_to(PHOTOS_DIR).as_posix()}`" in line)
        assert hashlib.sha256(p.read_bytes()).hexdigest()[:16] in row
    for licence in ("GPL-2", "GPL-3", "LGPL-3"):
        assert "GNU" in (PHOTOS_DIR / "LICENSES" / licence).read_text()
