"""Verdict thresholds recorded with a model: measured on real images, read back by sha256.

A calibration is the model's score threshold at each false-positive rate of the Score page
(``FPR_CHOICES``), measured on real images the model scored: at a threshold ``t`` an image is
called AI-generated when its score is at least ``t`` (``robustness.metrics.threshold_at_fpr``),
and at most ``fpr`` of the reals score that high. An FPR below ``1 / n_real`` cannot be
measured with ``n_real`` images; its threshold is recorded as None.

It is written as ``calibration.json`` next to the weights and holds the sha256 of the weights
it was measured for, so a retrained file never inherits another model's thresholds::

    cal = measure(real_scores, sha256=file_sha256(w), source="demo test split", command="...")
    write(cal, w.parent / CALIBRATION_FILE)
    read_for(w, file_sha256(w)).thresholds[0.05]
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustness.metrics import min_reals_for_fpr, threshold_at_fpr

__all__ = ["CALIBRATION_FILE", "FPR_CHOICES", "Calibration", "measure", "read_for", "write"]

CALIBRATION_FILE = "calibration.json"
FPR_CHOICES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)  # the Score page's verdict-band FPRs


@dataclass(frozen=True)
class Calibration:
    """Thresholds of one weights file at each FPR (None: too few reals to measure it)."""

    sha256: str  # of the weights file it was measured for
    n_real: int
    thresholds: dict[float, float | None]
    source: str  # which real images, in words
    command: str  # how to measure it again

    def supports(self, fpr: float) -> bool:
        return self.thresholds.get(fpr) is not None


def measure(
    real_scores: Sequence[float], *, sha256: str, source: str, command: str, fprs: Sequence[float] = FPR_CHOICES
) -> Calibration:
    """Thresholds at ``fprs`` from the model's scores of real images."""
    scores = np.asarray(real_scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("calibration needs the scores of at least one real image")
    thresholds = {}
    for f in fprs:
        t = threshold_at_fpr(scores, fpr=f) if scores.size >= min_reals_for_fpr(f) else math.inf
        thresholds[f] = None if math.isinf(t) else float(t)
    return Calibration(sha256, int(scores.size), thresholds, source, command)


def write(cal: Calibration, path: Path) -> None:
    data = {
        "sha256": cal.sha256,
        "n_real": cal.n_real,
        "source": cal.source,
        "command": cal.command,
        "rule": "fake when score >= threshold",
        "thresholds": {f"{f:g}": t for f, t in cal.thresholds.items()},
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_for(weights: str | Path, sha256: str) -> Calibration | None:
    """The calibration recorded next to ``weights`` if it was measured for these exact weights
    (same sha256); None when there is none, or it belongs to another file. A damaged file
    raises ``ValueError`` naming it."""
    path = Path(weights).parent / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("sha256") != sha256:
            return None
        thresholds = {float(f): (None if t is None else float(t)) for f, t in data["thresholds"].items()}
        return Calibration(sha256, int(data["n_real"]), thresholds, str(data["source"]), str(data["command"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a readable calibration file ({type(exc).__name__}: {exc})") from None
