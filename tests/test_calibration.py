"""spai.calibration and ``python -m spai.demo calibrate`` (on a miniature demo folder)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from robustness.metrics import threshold_at_fpr
from spai import calibration
from spai.checkpoint import file_sha256
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS


def test_measure_write_read_round_trip(tmp_path: Path) -> None:
    scores = np.linspace(0.0, 0.5, 60)
    cal = calibration.measure(scores, sha256="abc", source="s", command="c")
    assert cal.n_real == 60
    assert cal.thresholds[0.01] is None and cal.thresholds[0.005] is None  # needs 100, 200
    assert cal.thresholds[0.02] == threshold_at_fpr(scores, fpr=0.02)  # 50 <= 60 reals
    assert cal.supports(0.05) and not cal.supports(0.01)
    weights = tmp_path / "m.pth"
    weights.write_bytes(b"w")
    calibration.write(cal, tmp_path / calibration.CALIBRATION_FILE)
    assert calibration.read_for(weights, "abc") == cal
    assert calibration.read_for(weights, "other weights") is None  # never another model's
    with pytest.raises(ValueError, match="at least one real image"):
        calibration.measure([], sha256="abc", source="s", command="c")
    (tmp_path / calibration.CALIBRATION_FILE).write_text('{"sha256": "abc", "n_real": 3}')
    with pytest.raises(ValueError, match="calibration.json is not a readable calibration file"):
        calibration.read_for(weights, "abc")
    (tmp_path / calibration.CALIBRATION_FILE).write_text("not json")
    with pytest.raises(ValueError, match="not a readable calibration file"):
        calibration.read_for(weights, "abc")


def test_demo_calibrate_measures_the_split_reals(tmp_path: Path) -> None:
    """calibrate() scores the split's reals with the shipped weights and records thresholds
    equal to threshold_at_fpr of those scores."""
    from spai.demo.reproduce import calibrate
    from spai.detector import Detector

    data, out = tmp_path / "data", tmp_path / "weights"
    (data / "test").mkdir(parents=True)
    out.mkdir()
    shutil.copy(TINY_WEIGHTS, out / "spai_demo.pth")
    shutil.copy(TINY_CFG, out / "spai_demo.yaml")
    images = sorted(TINY_IMAGES.iterdir())
    rows = []
    for i, img in enumerate(images):
        shutil.copy(img, data / "test" / img.name)
        rows.append({"image": f"test/{img.name}", "class": int(i >= 6), "split": "test" if i != 5 else "val"})
    with (data / "demo.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["image", "class", "split"])
        writer.writeheader()
        writer.writerows(rows)
    cal = calibrate(data, out, log=lambda _: None)
    reals = [r["image"] for r in rows if r["class"] == 0 and r["split"] == "test"]
    det = Detector.load(out / "spai_demo.pth", device="cpu")
    scores = [det.score_one(data / r).score for r in reals]
    assert cal.n_real == 5
    assert cal.thresholds[0.2] == pytest.approx(threshold_at_fpr(scores, fpr=0.2))
    assert all(cal.thresholds[f] is None for f in (0.001, 0.005, 0.01, 0.02, 0.05, 0.1))
    weights = out / "spai_demo.pth"
    assert calibration.read_for(weights, file_sha256(weights)) == cal
