"""Read a training run's ``metrics.jsonl`` (written by ``spai.training.train``) into frames.

Each line is a JSON event: ``{"type": "step", "step", "epoch", "loss", "lr", ...}`` per
optimiser step, ``{"type": "epoch", "epoch", "step", "val_loss", "val_auc", "val_ap", ...}``
per epoch, ``{"type": "info", ...}`` otherwise. A half-written last line (the trainer is
appending) is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

METRICS_FILE = "metrics.jsonl"  # the file name spai.training writes in its output folder


@dataclass(frozen=True)
class TrainingLog:
    steps: pd.DataFrame  # one row per logged optimiser step
    epochs: pd.DataFrame  # one row per finished epoch (validation metrics)
    info: list[dict]  # other events (resume, pretrained weights, skipped images)


def read_training_log(path: str | Path) -> TrainingLog:
    """Parse a metrics.jsonl file; a missing file gives empty frames."""
    events: list[dict] = []
    p = Path(path)
    if p.is_file():
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written right now
            if isinstance(ev, dict):
                events.append(ev)
    steps = pd.DataFrame([e for e in events if e.get("type") == "step"])
    epochs = pd.DataFrame(
        [{k: v for k, v in e.items() if not isinstance(v, dict)} for e in events if e.get("type") == "epoch"]
    )
    return TrainingLog(steps, epochs, [e for e in events if e.get("type") == "info"])
