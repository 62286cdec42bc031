"""Checkpoints read as an attacker would write them: nothing in a weights file runs code.

Real files, real ``torch.load``: a pickle payload (zip and legacy formats), an HTML page named
``.pth``, text, a truncated archive, an official-style training checkpoint with a yacs config and
numpy scalars, the trusted conversion, and a model whose file changed after registration.
"""

from __future__ import annotations

import argparse
import builtins
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import jobqueue
from db.session import session_scope
from spai.__main__ import main as spai_main
from spai.checkpoint import CheckpointError, file_sha256, read_checkpoint
from spai.detector import Detector
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

SOURCE = Path(__file__).parent.parent / "spai"


class _Payload:
    """Unpickling this writes a marker file: the side effect an attack would have."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``python -m spai ARGV`` in-process: it must fail with one ``error:`` line."""
    rc = spai_main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _tiny_state() -> dict[str, torch.Tensor]:
    return torch.load(TINY_WEIGHTS, map_location="cpu", weights_only=True)["model"]


def test_nothing_in_the_repository_unpickles_with_weights_only_false() -> None:
    banned = ("weights_only=" + "False", "pickle." + "load")  # split: this file names them
    offenders = [
        p
        for root in ("spai", "dashboard", "db", "robustness", "benchmarks", "tests")
        for p in (SOURCE.parent / root).rglob("*.py")
        if any(b in p.read_text() for b in banned)
    ]
    assert offenders == []


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path, fmt: str, capsys) -> None:
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pth"
    obj = {"model": _tiny_state(), "extra": _Payload(marker)}
    if fmt == "zip":
        torch.save(obj, evil)
    else:
        evil.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(CheckpointError, match="could run code") as err:
        read_checkpoint(evil)
    if fmt == "zip":
        assert "builtins.exec" in str(err.value)
    with pytest.raises(CheckpointError):
        Detector.load(evil, cfg=TINY_CFG, device="cpu")
    line = _cli_error(
        capsys,
        [
            "infer",
            "--input",
            str(TINY_IMAGES),
            "--model",
            str(evil),
            "--cfg",
            str(TINY_CFG),
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert "could run code" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, what",
    [
        (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>", "HTML page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "text"),
        (b"", "empty .0 bytes."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "unknown data"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_gets_one_clear_error(
    tmp_path: Path, content: bytes, what: str, capsys
) -> None:
    bad = tmp_path / "spai.pth"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match=what):
        read_checkpoint(bad)
    line = _cli_error(
        capsys,
        [
            "infer",
            "--input",
            str(TINY_IMAGES),
            "--model",
            str(bad),
            "--cfg",
            str(TINY_CFG),
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert "not a PyTorch checkpoint" in line


def test_truncated_archive_is_reported_as_corrupt(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pth"
    cut.write_bytes(TINY_WEIGHTS.read_bytes()[: TINY_WEIGHTS.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt PyTorch checkpoint"):
        read_checkpoint(cut)


def test_official_training_checkpoint_with_yacs_config_loads_weights_only(tmp_path: Path) -> None:
    """The official ``save_checkpoint`` layout: a yacs CfgNode config, numpy max_accuracy."""
    from yacs.config import CfgNode

    cfg = CfgNode(new_allowed=True)
    cfg.MODEL = CfgNode(new_allowed=True)
    cfg.MODEL.TYPE, cfg.MODEL.SIZES = "vit", (1, 2)
    cfg.TRAIN = CfgNode(new_allowed=True)
    cfg.TRAIN.EPOCHS = 3
    cfg.freeze()
    path = tmp_path / "ckpt_epoch_2.pth"
    torch.save(
        {
            "model": _tiny_state(),
            "optimizer": {"state": {}, "param_groups": []},
            "lr_scheduler": {"last_epoch": 2},
            "max_accuracy": np.float64(0.91),
            "epoch": 2,
            "config": cfg,
            "amp": None,
        },
        path,
    )
    obj = read_checkpoint(path)
    assert obj["config"] == {"MODEL": {"TYPE": "vit", "SIZES": (1, 2)}, "TRAIN": {"EPOCHS": 3}}
    assert type(obj["config"]) is dict and float(obj["max_accuracy"]) == pytest.approx(0.91)
    det = Detector.load(path, cfg=TINY_CFG, device="cpu")  # the tiny fixture still scores the same
    ref = Detector.load(TINY_WEIGHTS, cfg=TINY_CFG, device="cpu")
    img = TINY_IMAGES / "02_rgb_500x300.png"
    assert abs(det.score_one(img).score - ref.score_one(img).score) < 1e-5


def test_convert_checkpoint_needs_trust_then_writes_a_plain_state_dict(tmp_path: Path, capsys) -> None:
    src, dst = tmp_path / "odd.pth", tmp_path / "plain.pth"
    torch.save({"model": _tiny_state(), "args": argparse.Namespace(lr=0.1)}, src)
    with pytest.raises(CheckpointError, match="convert-checkpoint --trust"):
        read_checkpoint(src)
    line = _cli_error(capsys, ["convert-checkpoint", str(src), str(dst)])
    assert "--trust" in line and "argparse.Namespace" in line and not dst.exists()
    assert spai_main(["convert-checkpoint", "--trust", str(src), str(dst)]) == 0
    out = capsys.readouterr()
    assert "WARNING" in out.err and "argparse.Namespace" in out.err and "wrote" in out.out
    plain = torch.load(dst, map_location="cpu", weights_only=True)
    assert set(plain) == {"model"} and plain["model"].keys() == _tiny_state().keys()
    Detector.load(dst, cfg=TINY_CFG, device="cpu")


def test_a_model_whose_file_changed_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    weights = tmp_path / "m.pth"
    weights.write_bytes(TINY_WEIGHTS.read_bytes())
    with session_scope(sqlite_url) as s:
        model_id = jobqueue.register_model(s, weights, name="m", cfg=TINY_CFG)
    registered = file_sha256(weights)
    state = _tiny_state()
    state["norm.bias"] = state["norm.bias"] + 1.0
    torch.save({"model": state}, weights)  # swapped under the same path
    with session_scope(sqlite_url) as s:
        with pytest.raises(ValueError, match="different file"):
            jobqueue.register_model(s, weights, name="m", cfg=TINY_CFG)
        assert jobqueue.register_model(s, weights, name="m2", cfg=TINY_CFG) != model_id
    with pytest.raises(CheckpointError, match="changed since the model was registered"):
        Detector.load(weights, cfg=TINY_CFG, device="cpu", expect_sha256=registered)
