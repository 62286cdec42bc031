"""Training: fixture-sized SPAI for a few steps on tiny images, on CPU."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from spai.augment import augment_view, train_views
from spai.config import load_config
from spai.detector import Detector
from spai.model import build_model
from spai.training import (
    TrainOptions,
    WarmupCosine,
    evaluate,
    load_pretrained_backbone,
    param_groups,
    read_csv_samples,
    train,
)
from tiny_model import TINY_CFG, TINY_IMAGES

PHOTO = TINY_IMAGES / "07_photo_640x427.jpg"
FAST = [
    ("DATA.BATCH_SIZE", "2"),
    ("DATA.NUM_WORKERS", "0"),
    ("TRAIN.EPOCHS", "2"),
    ("TRAIN.WARMUP_EPOCHS", "0"),
    ("TRAIN.BASE_LR", "1e-3"),
    ("DATA.AUGMENTED_VIEWS", "2"),
    ("MODEL.SID_DROPOUT", "0.0"),
    ("MODEL.DROP_PATH_RATE", "0.0"),
]


@pytest.fixture
def data(tiny_training_csv: Path) -> Path:
    """The shared 8-image training set (tests/conftest.py)."""
    return tiny_training_csv


def _cfg(*extra: tuple[str, str]):
    return load_config(TINY_CFG, FAST + list(extra))


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- augmentation


def test_train_views_shape_range_and_determinism() -> None:
    cfg = load_config(TINY_CFG)  # 4 views
    img = Image.open(PHOTO)
    a = train_views(img, np.random.default_rng(5), cfg)
    b = train_views(img, np.random.default_rng(5), cfg)
    c = train_views(img, np.random.default_rng(6), cfg)
    assert a.shape == (3, 224, 896) and a.dtype == torch.float32
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augment_view_small_and_grey_inputs() -> None:
    cfg = load_config(TINY_CFG)
    tiny = np.full((30, 50, 3), 128, np.uint8)  # smaller than a crop: resized up, never fails
    out = augment_view(tiny, np.random.default_rng(0), cfg.aug, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    grey = Image.open(TINY_IMAGES / "05_gray_320x256.png")
    assert train_views(grey, np.random.default_rng(0), cfg).shape == (3, 224, 896)


# ----------------------------------------------------------------------------- optimisation


def test_param_groups_weight_decay_and_layer_decay() -> None:
    model = build_model(load_config(TINY_CFG))
    depth = len(model.get_vision_transformer().blocks)
    official = param_groups(model, 0.05, 0.8, "official")
    assert {g["lr_scale"] for g in official} == {1.0}
    effective = param_groups(model, 0.05, 0.8, "effective")
    by_name = {n: g for g in effective for n in g["names"]}
    assert by_name["mfvit.vit.blocks.0.mlp.fc1.weight"]["lr_scale"] == pytest.approx(0.8**depth)
    assert by_name[f"mfvit.vit.blocks.{depth - 1}.attn.qkv.weight"]["lr_scale"] == pytest.approx(0.8)
    assert by_name["mfvit.vit.patch_embed.proj.weight"]["lr_scale"] == pytest.approx(0.8 ** (depth + 1))
    assert by_name["cls_head.head.0.weight"]["lr_scale"] == 1.0
    for name, g in by_name.items():
        p = dict(model.named_parameters())[name]
        expected = 0.0 if (p.ndim <= 1 or name.endswith(".bias")) else 0.05
        assert g["weight_decay"] == expected, name
    assert "mfvit.frequencies_mask" not in by_name  # not trainable
    with pytest.raises(ValueError, match="effective"):
        param_groups(model, 0.05, 0.8, "bogus")


def test_warmup_cosine_schedule() -> None:
    opt = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr_scale": 0.5}])
    s = WarmupCosine(opt, base_lr=1e-3, min_lr=1e-5, warmup_lr=1e-6, warmup_steps=10, total_steps=100)
    assert s.step_update(0) == pytest.approx(1e-6)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5e-6)
    assert s.lr_at(5) == pytest.approx(1e-6 + 5 * (1e-3 - 1e-6) / 10)
    assert s.lr_at(50) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert s.lr_at(100) == pytest.approx(1e-5)
    assert all(s.lr_at(t) >= s.lr_at(t + 1) for t in range(10, 100))


# ----------------------------------------------------------------------------- training


def test_training_lowers_loss_and_writes_loadable_checkpoint(data: Path, tmp_path: Path) -> None:
    no_aug = [
        (f"AUG.{k}_PROB", "0.0")
        for k in ("HORIZONTAL_FLIP", "VERTICAL_FLIP", "ROTATION", "GAUSSIAN_BLUR", "GAUSSIAN_NOISE")
    ]
    cfg = _cfg(("TRAIN.EPOCHS", "5"), ("DATA.BATCH_SIZE", "6"), ("AUG.JPEG_COMPRESSION_PROB", "0.0"), *no_aug)
    train_rows = [s for s in read_csv_samples(data) if s.split == "train"]
    torch.manual_seed(cfg.seed)
    before, _ = evaluate(build_model(cfg), train_rows, torch.device("cpu"))
    events: list[dict] = []
    result = train(cfg, TrainOptions(data_path=data, output=tmp_path), on_progress=events.append)
    assert not result.cancelled and result.steps == 5  # 6 train images / batch 6 x 5 epochs
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 6))
    assert all(math.isfinite(e["loss"]) and e["lr"] > 0 for e in steps)
    assert len(result.history) == 5 and all(0 <= e["val_auc"] <= 1 for e in result.history)
    assert (tmp_path / "metrics.jsonl").read_text().count('"type": "epoch"') == 5

    ck = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "max_accuracy", "epoch", "config", "step"} <= set(ck)
    assert ck["step"] == 5 and ck["epoch"] == 4 and ck["config"]["MODEL"]["VIT"]["EMBED_DIM"] == 96
    assert result.best_checkpoint is not None and result.best_checkpoint.is_file()

    det = Detector.load(result.last_checkpoint, device="cpu")
    after, _ = evaluate(det.model, train_rows, torch.device("cpu"))
    assert after["loss"] < before["loss"] - 0.1, (before, after)
    pred = det.score_one(data.parent / "fake0.png")
    assert pred.ok and 0.0 <= pred.score <= 1.0


def test_fine_tuning_at_lr_zero_continues_exactly_from_the_base(data: Path, tmp_path: Path) -> None:
    """init_from -> training steps (a condition applied to every image) at lr 0 -> the weights,
    and the epoch's validation metrics, are the base model's: nothing in the fine-tuning path
    (loading, param groups, weight decay, dropout, the condition pipeline) moves the model."""
    from spai.checkpoint import extract_state_dict, read_checkpoint
    from tiny_model import TINY_WEIGHTS

    cfg = _cfg(
        ("TRAIN.EPOCHS", "1"),
        ("TRAIN.BASE_LR", "0.0"),
        ("TRAIN.MIN_LR", "0.0"),
        ("TRAIN.WARMUP_LR", "0.0"),
        ("MODEL.SID_DROPOUT", "0.5"),
        ("AUG.CONDITIONS", "[{'id': 'meme', 'p': 1.0}]"),
    )
    result = train(cfg, TrainOptions(data_path=data, output=tmp_path / "ft", init_from=TINY_WEIGHTS))
    assert result.steps == 3  # 6 train images / batch 2
    base = extract_state_dict(read_checkpoint(TINY_WEIGHTS))
    tuned = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)["model"]
    assert set(tuned) == set(base)
    assert all(torch.equal(tuned[k], base[k]) for k in base)
    model = build_model(cfg)
    model.load_state_dict(base)
    val_rows = [s for s in read_csv_samples(data) if s.split == "val"]
    expected, _ = evaluate(model, val_rows, torch.device("cpu"))
    assert result.history[0]["val_loss"] == pytest.approx(expected["loss"], abs=1e-6)


def test_resume_continues_from_the_same_step(data: Path, tmp_path: Path) -> None:
    cfg = _cfg(("TRAIN.EPOCHS", "3"))  # 3 steps per epoch, 9 in all
    full = train(cfg, TrainOptions(data_path=data, output=tmp_path / "full"))

    def stop_at_4(event: dict) -> bool:
        return not (event["type"] == "step" and event["step"] == 4)

    part = train(cfg, TrainOptions(data_path=data, output=tmp_path / "part"), on_progress=stop_at_4)
    assert part.cancelled and part.steps == 4
    ck = torch.load(part.last_checkpoint, map_location="cpu", weights_only=True)
    assert ck["step"] == 4 and ck["epoch"] == 0  # epoch 0 done, 1 of epoch 1's 3 steps
    seen: list[int] = []
    resumed = train(
        cfg,
        TrainOptions(data_path=data, output=tmp_path / "part", resume=part.last_checkpoint),
        on_progress=lambda e: seen.append(e["step"]) if e["type"] == "step" else None,
    )
    assert seen[0] == 5 and resumed.steps == full.steps == 9
    a = torch.load(full.last_checkpoint, weights_only=True)["model"]
    b = torch.load(resumed.last_checkpoint, weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def test_unreadable_image_is_skipped_not_fatal(data: Path, tmp_path: Path) -> None:
    bad_csv = tmp_path / "bad.csv"
    (tmp_path / "broken.png").write_bytes(b"not an image")
    rows = data.read_text().splitlines()
    root = data.parent
    lines = [rows[0]] + [f"{root / r.split(',')[0]},{','.join(r.split(',')[1:])}" for r in rows[1:]]
    lines.append(f"{tmp_path / 'broken.png'},1,train")
    bad_csv.write_text("\n".join(lines) + "\n")
    result = train(
        _cfg(("TRAIN.EPOCHS", "1")),  # absolute paths in two folders: root "/"
        TrainOptions(data_path=bad_csv, csv_root_dir=Path("/"), output=tmp_path / "o"),
    )
    assert not result.cancelled and result.steps == 4  # 7 train rows / batch 2
    assert any("broken.png" in k for k in result.skipped)


def test_csv_errors_are_specific(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("image,label\na.png,1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_csv_samples(p)
    p.write_text("image,class,split\na.png,fake,train\n")
    with pytest.raises(ValueError, match="x.csv:2: class must be 0 or 1"):
        read_csv_samples(p)


# ----------------------------------------------------------------------------- MFM weights


def test_mfm_pretrained_backbone_loads_and_stays_frozen(data: Path, tmp_path: Path) -> None:
    cfg = _cfg(("TRAIN.EPOCHS", "1"))
    torch.manual_seed(123)
    donor = build_model(cfg).get_vision_transformer()
    mfm = {f"encoder.{k}": v + 0.01 for k, v in donor.state_dict().items()}
    mfm["decoder.0.weight"] = torch.zeros(3, 3)  # MFM's pixel decoder: not part of SPAI
    path = tmp_path / "mfm.pth"
    torch.save({"model": mfm}, path)

    model = build_model(cfg)
    info = load_pretrained_backbone(model, path)
    assert info["missing"] == []
    for k, v in model.get_vision_transformer().state_dict().items():
        torch.testing.assert_close(v, mfm[f"encoder.{k}"], msg=k)

    result = train(cfg, TrainOptions(data_path=data, output=tmp_path / "run", pretrained=path))
    state = torch.load(result.last_checkpoint, weights_only=True)["model"]
    for k, v in donor.state_dict().items():
        torch.testing.assert_close(state[f"mfvit.vit.{k}"], mfm[f"encoder.{k}"], msg=k)  # frozen
    torch.manual_seed(cfg.seed)
    untrained = build_model(cfg).state_dict()
    assert not torch.equal(state["cls_head.head.0.weight"], untrained["cls_head.head.0.weight"])


def test_pretrained_errors(tmp_path: Path) -> None:
    cfg = load_config(TINY_CFG)
    model = build_model(cfg)
    wrong = tmp_path / "wrong.pth"
    torch.save({"model": {"encoder.pos_embed": torch.zeros(1, 5, 96)}}, wrong)
    with pytest.raises(ValueError, match="shape mismatch.*pos_embed"):
        load_pretrained_backbone(model, wrong)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"model": {"foo.weight": torch.zeros(2)}}, unrelated)
    with pytest.raises(ValueError, match="no key matches"):
        load_pretrained_backbone(model, unrelated)


# ----------------------------------------------------------------------------- CLI


def test_cli_train_runs_and_refuses_lmdb(data: Path, tmp_path: Path) -> None:
    from spai.cli_train import train_cmd

    runner = CliRunner()
    base = [
        "--cfg",
        str(TINY_CFG),
        "--data-path",
        str(data),
        "--output",
        str(tmp_path),
        "--tag",
        "cli",
        "--batch-size",
        "3",
        "--epochs",
        "1",
        "--data-workers",
        "0",
        "--amp-opt-level",
        "O0",
        "--opt",
        "DATA.AUGMENTED_VIEWS",
        "2",
    ]
    res = runner.invoke(train_cmd, base + ["--lmdb", "x.lmdb"])
    assert res.exit_code != 0 and "--lmdb" in res.output
    res = runner.invoke(train_cmd, base + ["--save-all"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cli" / "ckpt_epoch_0.pth").is_file()
    assert (tmp_path / "cli" / "ckpt_last.pth").is_file()


def test_equal_crop_areas_give_native_resolution_crops() -> None:
    """MIN_CROP_AREA == MAX_CROP_AREA: each view is an unresampled 224 crop of the image."""
    cfg = load_config(
        TINY_CFG,
        [
            ("DATA.MIN_CROP_AREA", "1.0"),
            ("DATA.MAX_CROP_AREA", "1.0"),
            ("AUG.HORIZONTAL_FLIP_PROB", "0"),
            ("AUG.VERTICAL_FLIP_PROB", "0"),
            ("AUG.ROTATION_PROB", "0"),
            ("AUG.GAUSSIAN_BLUR_PROB", "0"),
            ("AUG.GAUSSIAN_NOISE_PROB", "0"),
            ("AUG.JPEG_COMPRESSION_PROB", "0"),
        ],
    )
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    views = train_views(photo, np.random.default_rng(3), cfg)  # 3 x 224 x (224 * views)
    pixels = (views * 255).round().byte().permute(1, 2, 0).numpy()
    for v in range(cfg.data.augmented_views):
        crop = pixels[:, 224 * v : 224 * (v + 1)]
        hits = [
            (t, x)
            for t in range(photo.shape[0] - 223)
            for x in range(photo.shape[1] - 223)
            if (photo[t, x] == crop[0, 0]).all() and (photo[t : t + 224, x : x + 224] == crop).all()
        ]
        assert hits, f"view {v} is not a native-resolution crop of the photo"
