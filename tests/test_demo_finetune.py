"""``python -m spai.demo finetune`` at miniature scale: a 4-photo demo set, the tiny fixture
model as the base, one short epoch with meme/screenshot/Instagram-filter augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from spai.demo.__main__ import cli
from spai.demo.build import BuildConfig, build_demo_set
from tests.test_demo import MINI_AE, _rows, _sources
from tiny_model import TINY_CFG, TINY_WEIGHTS

CONDITIONS = (
    "  CONDITIONS:\n    - {id: meme, p: 1.0}\n    - {id: screenshot, p: 0.5}\n    - {id: instagram-filter, p: 0.5}\n"
)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A miniature demo set (seed 0) and a one-epoch fine-tuning config on the tiny model."""
    root = tmp_path_factory.mktemp("finetune")
    cfg = BuildConfig(
        output=root / "demo",
        seed=0,
        crop_sizes=((224, 224), (256, 224)),
        pixels_per_crop=10**9,
        min_crops=1,
        max_crops=1,
        min_photos=4,
        autoencoder=MINI_AE,
    )
    build_demo_set(cfg, _sources(), log=lambda _: None)
    (root / "ft.yaml").write_text(
        f"BASE: ['{TINY_CFG.as_posix()}']\nDATA:\n  BATCH_SIZE: 2\n"
        f"  AUGMENTED_VIEWS: 2\nAUG:\n{CONDITIONS}TRAIN:\n  EPOCHS: 1\n  WARMUP_EPOCHS: 0\n"
        "  BASE_LR: 3e-5\n"
    )
    return root


def _run(root: Path, out: str, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        cli,
        [
            "finetune",
            "--data",
            str(root / "demo"),
            "--base",
            str(TINY_WEIGHTS),
            "--output",
            str(root / out),
            "--run-dir",
            str(root / "runs" / out),
            "--config",
            str(root / "ft.yaml"),
            "--condition",
            "original",
            "--condition",
            "meme",
            *extra,
        ],
    )
    return res.exit_code, res.output + (str(res.exception) if res.exception else "")


def test_finetune_is_seeded_records_its_augmentation_and_writes_the_card(mini: Path) -> None:
    from spai.detector import Detector

    code, out = _run(mini, "a")
    assert code == 0, out
    info = json.loads((mini / "a" / "eval.json").read_text())
    assert info["aug_conditions"] == [
        {"id": "meme", "p": 1.0},
        {"id": "screenshot", "p": 0.5},
        {"id": "instagram-filter", "p": 0.5},
    ]
    assert info["seed"] == 0 and info["epochs"] == 1 and info["base_lr"] == 3e-5
    assert set(info["before"]) == set(info["after"]) == {"original", "meme"}
    assert info["after"]["meme"]["n"] == info["before"]["meme"]["n"] > 0
    applied = info["epoch_log"][0]["aug_conditions"]
    n_train = sum(1 for r in _rows(mini / "demo" / "demo.csv") if r["split"] == "train")
    assert applied["meme"] == n_train  # p = 1: every training image, once per epoch
    seeds = info["seeds"]  # held out: no training seed is a test variant's
    assert seeds["shared_seeds"] == 0 and seeds["test_images_among_them"] == 0
    assert seeds["training_seeds_with_bit_63"] == seeds["training_applications_seeds"] > 0
    assert seeds["evaluation_seeds_below_2_63"] == seeds["evaluation_seeds"] > 0
    card = (mini / "a" / "MODEL_CARD.md").read_text()
    assert "`meme` p=1, `screenshot` p=0.5, `instagram-filter` p=0.5" in card
    assert info["sha256"] in card and "**0 shared**" in card
    b, a = info["before"]["meme"]["auc"], info["after"]["meme"]["auc"]
    assert f"| `meme` | {b:.4f} | {a:.4f} | {a - b:+.4f} |" in card
    weights = mini / "a" / "spai_demo_robust.pth"  # loads with its sidecar config
    det = Detector.load(weights, device="cpu")
    img = Image.open(mini / "demo" / _rows(mini / "demo" / "demo.csv")[0]["image"])
    assert det.score_one(img).ok

    code, out = _run(mini, "b")  # the same seed: the same augmentation draws, the same weights
    assert code == 0, out
    again = json.loads((mini / "b" / "eval.json").read_text())
    assert again["sha256"] == info["sha256"]
    log = (mini / "runs" / "a" / "aug_conditions.jsonl").read_text()
    assert log == (mini / "runs" / "b" / "aug_conditions.jsonl").read_text()


def test_finetune_refuses_a_config_without_conditions_and_another_seeds_set(mini: Path) -> None:
    plain = mini / "plain.yaml"
    plain.write_text(f"BASE: ['{TINY_CFG.as_posix()}']\n")
    res = CliRunner().invoke(
        cli, ["finetune", "--data", str(mini / "demo"), "--config", str(plain), "--base", str(TINY_WEIGHTS)]
    )
    assert res.exit_code == 1 and "AUG.CONDITIONS is empty" in res.output
    assert "Traceback" not in res.output
    code, out = _run(mini, "d", "--build-seed", "3")
    assert code == 1 and "was built with seed 0, not 3" in out
    assert not (mini / "d").exists()


STUDY = """
name: mini-robust
image_sets:
  - {name: demo-test, csv: demo/demo.csv, split: test}
conditions: [original, meme]
models:
  - {name: tiny, weights: base.pth, config: base.yaml}
  - {name: tiny-robust, weights: a/spai_demo_robust.pth, config: a/spai_demo_robust.yaml}
metrics: [auc]
real_sets: [demo-test-real]
deltas: [{a: tiny-robust, b: tiny}]
"""


def test_compare_shows_the_fine_tune_beside_its_base(mini: Path, monkeypatch) -> None:
    """The before/after study (as examples/demo-robust-study.yaml, in miniature) run by the
    study CLI; the Compare page puts the two models side by side as paired deltas."""
    import shutil

    from streamlit.testing.v1 import AppTest

    from db.session import dispose_all
    from robustness.study.__main__ import main
    from robustness.study.report import load_results
    from robustness.study.schema import load_study

    if not (mini / "a" / "eval.json").is_file():
        assert _run(mini, "a")[0] == 0
    shutil.copy(TINY_WEIGHTS, mini / "base.pth")
    shutil.copy(TINY_CFG, mini / "base.yaml")
    (mini / "study.yaml").write_text(STUDY)
    url = f"sqlite:///{mini / 'compare.db'}"
    monkeypatch.setenv("SPAI_DATA_DIR", str(mini / "data"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SPAI_START_WORKER", "0")
    try:
        assert (
            main(
                [
                    "run",
                    str(mini / "study.yaml"),
                    "--database-url",
                    url,
                    "--output",
                    str(mini / "out"),
                    "--worker",
                    "inline",
                    "--no-progress",
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
        results = load_results(load_study(mini / "study.yaml"), url=url)
        at = AppTest.from_file(
            str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "compare.py"), default_timeout=120
        ).run()
        at.multiselect(key="compare.models").set_value(["tiny-robust", "tiny"]).run()
        at.toggle(key="compare.delta_on").set_value(True).run()
        assert not at.exception
        frame = at.dataframe[-1].value.set_index("condition")
        for cond in ("original", "meme"):
            after, before = (results.mean(m, "auc", cond) for m in ("tiny-robust", "tiny"))
            assert frame.loc[cond, "tiny-robust"] == pytest.approx(after, abs=1e-9)
            assert frame.loc[cond, "delta"] == pytest.approx(after - before, abs=1e-9)
            assert frame.loc[cond, "low"] <= frame.loc[cond, "delta"] <= frame.loc[cond, "high"]
    finally:
        dispose_all()


def test_the_example_study_puts_the_shipped_fine_tune_beside_the_demo_model() -> None:
    from robustness.study.schema import load_study

    repo = Path(__file__).resolve().parents[1]
    study = load_study(repo / "examples" / "demo-robust-study.yaml")
    assert [(m.name, m.weights) for m in study.models] == [
        ("demo", repo / "weights" / "demo" / "spai_demo.pth"),
        ("demo-robust", repo / "weights" / "demo-robust" / "spai_demo_robust.pth"),
    ]
    card = (repo / "weights" / "demo-robust" / "MODEL_CARD.md").read_text()
    info = json.loads((repo / "weights" / "demo-robust" / "eval.json").read_text())
    for cond in ("original", "meme", "screenshot", "instagram-filter"):
        assert cond in [c.id for c in study.conditions]
        b, a = info["before"][cond]["auc"], info["after"][cond]["auc"]
        assert f"| `{cond}` | {b:.4f} | {a:.4f} | {a - b:+.4f} |" in card
    assert info["seeds"]["shared_seeds"] == 0
