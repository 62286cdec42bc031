"""Models page (AppTest); the listing behind it is tested in test_weights.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app_support import new_app, study_store, texts, use_store
from tiny_model import TINY_CFG, TINY_WEIGHTS


def _demo_weights(tmp_path: Path) -> Path:
    """A weights/ folder with a demo model (the tiny fixture) and its model card."""
    weights = tmp_path / "weights"
    (weights / "demo").mkdir(parents=True)
    shutil.copy(TINY_WEIGHTS, weights / "demo" / "spai_demo.pth")
    shutil.copy(TINY_CFG, weights / "demo" / "spai_demo.yaml")
    (weights / "demo" / "MODEL_CARD.md").write_text("# Demo card\n\nTrained for the test.\n")
    shutil.copy(TINY_WEIGHTS, weights / "other.pth")
    return weights


def test_models_page_empty_store_lists_the_active_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import spai.weights
    from spai.checkpoint import file_sha256

    monkeypatch.setattr(spai.weights, "WEIGHTS_DIR", tmp_path / "no-weights")
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    at.switch_page("views/models.py").run()
    assert not at.exception
    assert texts(at, "subheader") == ["spai_tiny_seed0 (active)"]
    card = at.table[0].value
    assert card.loc["sha256", "value"] == file_sha256(TINY_WEIGHTS)
    assert "embed_dim=96" in card.loc["config", "value"]
    assert "masking radius 16" in card.loc["config", "value"]
    assert any("has no models yet" in c for c in texts(at, "caption"))


def test_models_page_demo_model_card_badge_and_default_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import spai.weights

    weights = _demo_weights(tmp_path)
    demo = weights / "demo" / "spai_demo.pth"
    monkeypatch.setattr(spai.weights, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(spai.weights, "DEMO_WEIGHTS", demo)
    use_store(monkeypatch, tmp_path / "spai.db")
    monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(demo))
    at = new_app().run()
    assert "DEMO" in " ".join(texts(at.sidebar, "markdown"))
    at.switch_page("views/models.py").run()
    assert not at.exception
    assert texts(at, "subheader") == ["spai_demo (active)", "other"]
    assert any("Demo card" in m for m in texts(at, "markdown"))
    # choose the other checkpoint as the default: saved in the store, so a new session has it
    box = at.selectbox(key="models.choice")
    box.set_value(str(weights / "other.pth")).run()
    at.button(key="models.set_default").click().run()
    assert any("Default model: other" in s for s in texts(at, "success"))
    at.run()
    assert texts(at, "subheader")[1] == "other (active)"
    side = " ".join(texts(at.sidebar, "markdown"))
    assert "other.pth" in side and "DEMO" not in side
    again = new_app().run()  # another browser session, same store
    assert "other.pth" in " ".join(texts(again.sidebar, "markdown"))
    again.switch_page("views/models.py").run()
    again.button(key="models.clear_default").click().run()
    assert any("forgotten" in s for s in texts(again, "success"))
    again.run()
    assert texts(again, "subheader") == ["spai_demo (active)", "other"]
    # a saved default whose file has gone: the page says so and falls back
    again.selectbox(key="models.choice").set_value(str(weights / "other.pth")).run()
    again.button(key="models.set_default").click().run()
    (weights / "other.pth").unlink()
    again.run()
    assert not again.exception
    assert any("no longer exists" in w and "spai_demo.pth" in w for w in texts(again, "warning"))
    assert texts(again, "subheader") == ["spai_demo (active)"]


def test_models_page_with_the_study_shows_stored_models_and_their_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, study_store(tmp_path))
    at = new_app().run()
    at.switch_page("views/models.py").run()
    assert not at.exception
    stored = at.dataframe[0].value
    assert set(stored["name"]) == {"SPAI (official weights, study)", "ROGER (study fused model)"}
    assert (stored["n_predictions"] > 80_000).all()
    summary = at.dataframe[1].value
    assert summary["condition"].iloc[0] == "original"
    assert {"instagram-filter", "meme", "screenshot"} <= set(summary["condition"])
    assert summary["auc"].between(0.5, 1.0).all()
    assert (summary["n_real"] > 0).all() and (summary["n_fake"] > 0).all()
    shown = json.loads(at.dataframe[1].proto.columns)  # one number format, not "0" and "0.0278"
    assert {
        c: shown[c]["type_config"]["format"] for c in ("auc", "ap", "mean_score_real", "mean_score_fake")
    } == dict.fromkeys(("auc", "ap", "mean_score_real", "mean_score_fake"), "%.4f")


def test_an_unloadable_default_model_gives_a_clear_error_on_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spai.weights

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "broken.pth").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(spai.weights, "WEIGHTS_DIR", weights)
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    at.switch_page("views/models.py").run()
    at.selectbox(key="models.choice").set_value(str(weights / "broken.pth")).run()
    at.button(key="models.set_default").click().run()
    at.switch_page("views/score.py").run()
    assert not at.exception
    assert any("Cannot load the model" in e and "broken.pth" in e for e in texts(at, "error"))


def test_models_page_with_imported_and_own_models_shows_no_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: `None` showed in the path and sha256 columns of imported models, and `nan`
    in evaluation summaries of a model scored on one class only."""
    import spai.weights
    from app_support import score_own_sets, shown_missing, study_store

    monkeypatch.setattr(spai.weights, "WEIGHTS_DIR", tmp_path / "no-weights")
    db = study_store(tmp_path)
    use_store(monkeypatch, db)
    score_own_sets(
        f"sqlite:///{db}",
        tmp_path / "own",
        {"my_fake": ("fake", ["04_rgb_97x130.png", "08_synth_449x450.png"], ("original",))},
    )
    at = new_app().run()
    at.switch_page("views/models.py").run()
    assert not at.exception
    stored = at.dataframe[-2].value
    assert stored["sha256"].isna().any()  # imported models have no weights file
    at.selectbox(key="models.stored").set_value(int(stored.loc[stored["name"] == "tiny", "id"].iloc[0])).run()
    assert at.dataframe[-1].value["auc"].isna().all()  # fakes only: no AUC
    assert shown_missing(at) == []
