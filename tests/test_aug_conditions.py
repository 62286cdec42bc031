"""AUG.CONDITIONS: robustness conditions as training augmentation, seeded apart from the test
variants' seeds, applied with the same code, and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustness.apply import apply_condition
from robustness.registry import seed_for
from spai.augment import TRAIN_SEED_BIT, apply_conditions, condition_seed
from spai.config import load_config
from spai.training import CONDITIONS_FILE, TrainOptions, train
from tiny_model import TINY_CFG, TINY_IMAGES

PHOTO = TINY_IMAGES / "02_rgb_500x300.png"
FAST = [
    ("TRAIN.EPOCHS", "2"),
    ("TRAIN.WARMUP_EPOCHS", "0"),
    ("DATA.BATCH_SIZE", "2"),
    ("DATA.AUGMENTED_VIEWS", "1"),
    ("DATA.NUM_WORKERS", "0"),
]


def test_config_reads_and_round_trips_conditions() -> None:
    cfg = load_config(TINY_CFG, [("AUG.CONDITIONS", "[{'id': 'meme', 'p': 0.2}, {'ID': 'screenshot', 'P': 1}]")])
    assert cfg.aug.conditions == (("meme", 0.2), ("screenshot", 1.0))
    again = load_config(TINY_CFG, [("AUG.CONDITIONS", str(cfg.to_dict()["AUG"]["CONDITIONS"]))])
    assert again.aug.conditions == cfg.aug.conditions
    assert load_config(TINY_CFG).aug.conditions == ()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("[{'id': 'meme', 'p': 1.5}]", "AUG.CONDITIONS[0].p: must be a probability"),
        ("[{'id': 'meme'}]", "AUG.CONDITIONS[0]: needs exactly the keys id and p"),
        ("[{'id': 'meme', 'p': 0.1}, {'id': 'meme', 'p': 0.2}]", "listed twice"),
    ],
)
def test_bad_conditions_name_the_key(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_config(TINY_CFG, [("AUG.CONDITIONS", value)])


def test_conditions_are_seeded_apart_from_test_variants_and_use_their_code() -> None:
    img = Image.open(PHOTO).convert("RGB")
    conds = (("meme", 1.0), ("jpeg/q75", 1.0), ("blur/s1.0", 0.0))
    out1, applied1 = apply_conditions(img, np.random.default_rng(5), conds, run_seed=0, epoch=3, image="a.png")
    out2, applied2 = apply_conditions(img, np.random.default_rng(5), conds, run_seed=0, epoch=3, image="a.png")
    assert applied1 == applied2 and np.array_equal(np.asarray(out1), np.asarray(out2))
    assert [a["condition"] for a in applied1] == ["meme", "jpeg/q75"]  # p = 0 never fires
    for a in applied1:
        assert a["seed"] == condition_seed(0, 3, "a.png", a["condition"])
        assert a["seed"] >= TRAIN_SEED_BIT > seed_for("a.png", a["condition"])
    # the same code as the test variants, at the training seed
    step, _ = apply_condition(img, "meme", "a.png", seed=applied1[0]["seed"])
    step, _ = apply_condition(step, "jpeg/q75", "a.png", seed=applied1[1]["seed"])
    assert np.array_equal(np.asarray(step), np.asarray(out1))
    test_variant, _ = apply_condition(img, "meme", "a.png")
    assert not np.array_equal(
        np.asarray(test_variant), np.asarray(apply_condition(img, "meme", "a.png", seed=applied1[0]["seed"])[0])
    )
    # another epoch draws another caption
    assert condition_seed(0, 4, "a.png", "meme") != applied1[0]["seed"]


def test_training_applies_and_records_conditions(tiny_training_csv: Path, tmp_path: Path) -> None:
    cfg = load_config(
        TINY_CFG, FAST + [("AUG.CONDITIONS", "[{'id': 'jpeg/q75', 'p': 1.0}, {'id': 'blur/s1.0', 'p': 0.5}]")]
    )
    result = train(cfg, TrainOptions(data_path=tiny_training_csv, output=tmp_path / "run"))
    lines = [json.loads(ln) for ln in (tmp_path / "run" / CONDITIONS_FILE).read_text().splitlines()]
    jpeg = [a for a in lines if a["condition"] == "jpeg/q75"]
    assert len(jpeg) == 2 * 6  # p = 1: every training image (6) in both epochs
    assert {a["epoch"] for a in lines} == {0, 1} and all(a["seed"] >= TRAIN_SEED_BIT for a in lines)
    assert all(a["seed"] == condition_seed(cfg.seed, a["epoch"], a["image"], a["condition"]) for a in lines)
    blur = [a for a in lines if a["condition"] == "blur/s1.0"]
    assert 0 < len(blur) < 12
    counts = [ev["aug_conditions"] for ev in result.history]
    assert sum(c["jpeg/q75"] for c in counts) == 12 and sum(c.get("blur/s1.0", 0) for c in counts) == len(blur)
    info = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(ev.get("aug_conditions") == [["jpeg/q75", 1.0], ["blur/s1.0", 0.5]] for ev in info)
    import torch

    ck = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert ck["config"]["AUG"]["CONDITIONS"] == [["jpeg/q75", 1.0], ["blur/s1.0", 0.5]]
    # the same seed gives the very same applications (a one-epoch rerun: epoch 0's)
    train(cfg.with_opts([("TRAIN.EPOCHS", "1")]), TrainOptions(data_path=tiny_training_csv, output=tmp_path / "again"))
    again = [json.loads(ln) for ln in (tmp_path / "again" / CONDITIONS_FILE).read_text().splitlines()]
    assert again == [a for a in lines if a["epoch"] == 0]


def test_unknown_condition_is_refused_before_training(tiny_training_csv: Path, tmp_path: Path) -> None:
    cfg = load_config(TINY_CFG, FAST + [("AUG.CONDITIONS", "[{'id': 'memes', 'p': 0.2}]")])
    with pytest.raises(ValueError, match=r"AUG.CONDITIONS\[0\].id: Unknown condition 'memes'"):
        train(cfg, TrainOptions(data_path=tiny_training_csv, output=tmp_path / "run"))
