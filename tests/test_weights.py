"""The weights catalogue (spai.weights): origins, records, the listing and the one rule that
decides the active model. Real files: the tiny fixture copied into temporary folders."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import spai.weights as w
from spai.weights import ORIGINS, active_model, catalogue, model_file, origin_of
from tiny_model import TINY_CFG, TINY_WEIGHTS


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights/ folder with official, demo (sidecar config + card) and another file; the
    catalogue's well-known paths point into it."""
    root = tmp_path / "weights"
    (root / "demo").mkdir(parents=True)
    shutil.copy(TINY_WEIGHTS, root / "spai.pth")
    shutil.copy(TINY_WEIGHTS, root / "demo" / "spai_demo.pth")
    shutil.copy(TINY_CFG, root / "demo" / "spai_demo.yaml")
    (root / "demo" / "MODEL_CARD.md").write_text("# Demo card\n")
    shutil.copy(TINY_WEIGHTS, root / "other.pth")
    (root / "demo-robust").mkdir()
    shutil.copy(TINY_WEIGHTS, root / "demo-robust" / "spai_demo_robust.pth")
    monkeypatch.setattr(w, "WEIGHTS_DIR", root)
    monkeypatch.setattr(w, "OFFICIAL_WEIGHTS", root / "spai.pth")
    monkeypatch.setattr(w, "DEMO_WEIGHTS", root / "demo" / "spai_demo.pth")
    return root


def test_one_origin_vocabulary() -> None:
    assert ORIGINS == ("official", "demo", "trained", "imported")


def test_origin_of_names_official_demo_and_any_other_file_trained(weights_dir: Path) -> None:
    assert origin_of(weights_dir / "spai.pth") == "official"
    assert origin_of(weights_dir / "demo" / "spai_demo.pth") == "demo"
    assert origin_of(weights_dir / "demo" / "another.pth") == "demo"
    assert origin_of(weights_dir / "other.pth") == "trained"
    assert origin_of(weights_dir / "demo-robust" / "spai_demo_robust.pth") == "demo"  # a shipped fine-tune
    assert origin_of(TINY_WEIGHTS) == "trained"
    assert all(origin_of(p) in ORIGINS for p in weights_dir.rglob("*.pth"))


def test_model_file_config_as_given_else_sidecar_else_none(weights_dir: Path) -> None:
    demo = model_file(weights_dir / "demo" / "spai_demo.pth")
    assert (demo.name, demo.origin, demo.config) == ("spai_demo", "demo", weights_dir / "demo" / "spai_demo.yaml")
    assert model_file(weights_dir / "other.pth").config is None
    assert model_file(weights_dir / "other.pth", TINY_CFG).config == TINY_CFG
    assert demo.model_card == weights_dir / "demo" / "MODEL_CARD.md"
    assert model_file(weights_dir / "other.pth").model_card is None


def test_model_file_sha256_and_size_are_the_files(weights_dir: Path) -> None:
    other = model_file(weights_dir / "other.pth")
    assert other.sha256 == hashlib.sha256(TINY_WEIGHTS.read_bytes()).hexdigest()
    assert other.size_bytes == TINY_WEIGHTS.stat().st_size
    (weights_dir / "other.pth").write_bytes(b"not the same file any more")  # a new version
    assert other.sha256 == hashlib.sha256(b"not the same file any more").hexdigest()


def test_catalogue_lists_official_demo_then_others_and_extra_files_once(weights_dir: Path, tmp_path: Path) -> None:
    found = catalogue()
    assert [(m.name, m.origin) for m in found] == [
        ("spai", "official"),
        ("spai_demo", "demo"),
        ("spai_demo_robust", "demo"),
        ("other", "trained"),
    ]
    extra = model_file(TINY_WEIGHTS, TINY_CFG)
    listed = catalogue(also=[extra, model_file(weights_dir / "other.pth"), model_file(tmp_path / "missing.pth")])
    assert [m.path for m in listed] == [m.path for m in found] + [TINY_WEIGHTS]
    assert catalogue(tmp_path / "nowhere") == []


def test_catalogue_of_the_repository_never_lists_test_fixtures() -> None:
    assert all("fixtures" not in str(m.path) for m in catalogue())


def test_active_model_explicit_beats_saved_beats_environment_beats_official(weights_dir: Path) -> None:
    saved = str(weights_dir / "other.pth")
    env = {w.ENV_WEIGHTS: str(TINY_WEIGHTS), w.ENV_CFG: str(TINY_CFG)}
    chosen = active_model(TINY_WEIGHTS, TINY_CFG, saved=saved, environ=env)
    assert (chosen.source, chosen.weights, chosen.cfg) == ("explicit", str(TINY_WEIGHTS), str(TINY_CFG))
    got = active_model(saved=saved, environ=env)
    assert (got.source, got.weights, got.cfg, got.saved) == ("saved", saved, None, saved)
    got = active_model(environ=env)
    assert (got.source, got.weights, got.cfg, got.origin) == (
        "environment",
        str(TINY_WEIGHTS),
        str(TINY_CFG),
        "trained",
    )
    got = active_model()
    assert (got.source, got.weights, got.origin, got.exists) == (
        "official",
        str(weights_dir / "spai.pth"),
        "official",
        True,
    )


def test_active_model_saved_file_gone_falls_through_and_keeps_what_was_saved(weights_dir: Path) -> None:
    gone = str(weights_dir / "deleted.pth")
    got = active_model(saved=gone)
    assert (got.source, got.saved) == ("official", gone)


def test_active_model_saved_environment_file_keeps_its_config(weights_dir: Path) -> None:
    env = {w.ENV_WEIGHTS: str(TINY_WEIGHTS), w.ENV_CFG: str(TINY_CFG)}
    got = active_model(saved=str(TINY_WEIGHTS), environ=env)
    assert (got.source, got.cfg) == ("environment", str(TINY_CFG))


def test_active_model_demo_without_official_weights_and_none_at_all(weights_dir: Path) -> None:
    (weights_dir / "spai.pth").unlink()
    got = active_model()
    assert (got.source, got.origin, got.exists) == ("demo", "demo", True)
    assert got.cfg == str(weights_dir / "demo" / "spai_demo.yaml")
    (weights_dir / "demo" / "spai_demo.pth").unlink()
    assert not active_model().exists


def test_shipped_demo_calibration_belongs_to_the_shipped_weights() -> None:
    demo = model_file(w.DEMO_WEIGHTS)
    cal = demo.calibration
    assert cal is not None and cal.sha256 == demo.sha256 and cal.n_real > 0
    assert model_file(TINY_WEIGHTS).calibration is None  # no calibration.json beside the fixture
