"""Where the model files live and which kind a weights file is, without importing torch (the
dashboard's frame shows the active model before the model itself is loaded).

    default_weights()               # weights/spai.pth if present, else the shipped demo model
    origin_of("weights/spai.pth")   # "official" | "demo" | "custom"
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO_ROOT", "OFFICIAL_WEIGHTS", "OFFICIAL_CONFIG", "DEMO_WEIGHTS", "default_weights",
           "origin_of"]

REPO_ROOT = Path(__file__).resolve().parent.parent
OFFICIAL_WEIGHTS = REPO_ROOT / "weights" / "spai.pth"
OFFICIAL_CONFIG = REPO_ROOT / "configs" / "spai.yaml"
DEMO_WEIGHTS = REPO_ROOT / "weights" / "demo" / "spai_demo.pth"


def default_weights() -> Path:
    """The official weights if a user placed them in weights/, else the shipped demo model."""
    return OFFICIAL_WEIGHTS if OFFICIAL_WEIGHTS.is_file() else DEMO_WEIGHTS


def origin_of(weights: str | Path) -> str:
    """'official' for weights/spai.pth, 'demo' for a file in weights/demo/, else 'custom'."""
    resolved = Path(weights).resolve()
    if resolved == OFFICIAL_WEIGHTS.resolve():
        return "official"
    if resolved.parent == DEMO_WEIGHTS.parent.resolve():
        return "demo"
    return "custom"
