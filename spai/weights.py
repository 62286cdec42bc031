"""The weights catalogue: which model files this project knows, what each one is, and which one
is active. Torch-free, so the dashboard's frame can name the active model before loading it.

Every weights file has one origin, from one vocabulary (``ORIGINS``), used by the CLI, the
pages and the store (``db.models.Model.origin``):

- ``official``: the official SPAI checkpoint, ``weights/spai.pth`` (``configs/spai.yaml``);
- ``demo``: a model shipped in ``weights/demo/`` (a demo, not a benchmark);
- ``trained``: any other weights file (fine-tuned here, or brought by the user);
- ``imported``: a stored model that has scores only, no weights file.

The active model is decided here, once: an explicit choice (``--model``), else the default
saved on the Models page while its file exists, else ``SPAI_MODEL_WEIGHTS`` (dashboard only),
else ``weights/spai.pth``, else the shipped demo model::

    active_model("runs/x/ckpt_epoch_3.pth").origin   # "trained"
    active_model().source                             # "official" | "demo" when nothing chosen
    [m.name for m in catalogue()]                     # files under weights/
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spai.calibration imports numpy; read only when a page asks
    from spai.calibration import Calibration

__all__ = [
    "DEMO",
    "DEMO_WEIGHTS",
    "ENV_CFG",
    "ENV_WEIGHTS",
    "IMPORTED",
    "OFFICIAL",
    "OFFICIAL_CONFIG",
    "OFFICIAL_WEIGHTS",
    "ORIGINS",
    "REPO_ROOT",
    "TRAINED",
    "WEIGHTS_DIR",
    "ActiveModel",
    "ModelFile",
    "active_model",
    "catalogue",
    "default_weights",
    "environment_model",
    "model_file",
    "origin_of",
    "weights_sha256",
]

OFFICIAL, DEMO, TRAINED, IMPORTED = "official", "demo", "trained", "imported"
ORIGINS = (OFFICIAL, DEMO, TRAINED, IMPORTED)  # the one origin vocabulary (see the docstring)

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = REPO_ROOT / "weights"
OFFICIAL_WEIGHTS = WEIGHTS_DIR / "spai.pth"
OFFICIAL_CONFIG = REPO_ROOT / "configs" / "spai.yaml"
DEMO_WEIGHTS = WEIGHTS_DIR / "demo" / "spai_demo.pth"
ENV_WEIGHTS = "SPAI_MODEL_WEIGHTS"  # the dashboard's weights when none is saved as the default
ENV_CFG = "SPAI_MODEL_CFG"  # its config (else the sidecar <name>.yaml or the stored config)
CALIBRATION_FILE = "calibration.json"  # spai.calibration.CALIBRATION_FILE, without importing it
MODEL_CARD = "MODEL_CARD.md"


@dataclass(frozen=True)
class ModelFile:
    """One weights file the project can load. ``sha256`` hashes the file on first use (then
    cached per file version); nothing is read when the record is made."""

    name: str
    path: Path
    config: Path | None  # as chosen, else the sidecar <name>.yaml; None: the one stored in the
    # file, else configs/spai.yaml (spai.detector.Detector.load)
    origin: str  # one of ORIGINS

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    @property
    def sha256(self) -> str:
        return weights_sha256(self.path)

    @property
    def model_card(self) -> Path | None:
        card = self.path.parent / MODEL_CARD
        return card if card.is_file() else None

    @property
    def calibration(self) -> Calibration | None:
        """The verdict thresholds recorded next to the file for exactly these weights."""
        if not (self.path.parent / CALIBRATION_FILE).is_file():
            return None
        from spai.calibration import read_for

        return read_for(self.path, self.sha256)


@dataclass(frozen=True)
class ActiveModel:
    """The model the CLI or the pages score with, and why it is that one."""

    model: ModelFile
    source: str  # explicit | saved | environment | official | demo
    saved: str | None = None  # the default saved on the Models page, as read (file may be gone)

    @property
    def weights(self) -> str:
        return str(self.model.path)

    @property
    def cfg(self) -> str | None:
        return None if self.model.config is None else str(self.model.config)

    @property
    def origin(self) -> str:
        return self.model.origin

    @property
    def exists(self) -> bool:
        return self.model.exists


def origin_of(weights: str | Path) -> str:
    """``official`` for weights/spai.pth, ``demo`` for a file in weights/demo/ or another
    shipped demo folder (weights/demo-*/, e.g. the fine-tuned demo-robust), else ``trained``."""
    resolved = Path(weights).resolve()
    if resolved == OFFICIAL_WEIGHTS.resolve():
        return OFFICIAL
    if resolved.parent == DEMO_WEIGHTS.parent.resolve() or _is_demo_folder(resolved.parent):
        return DEMO
    return TRAINED


def _is_demo_folder(folder: Path) -> bool:
    return folder.parent == WEIGHTS_DIR.resolve() and folder.name.startswith("demo-")


def model_file(weights: str | Path, config: str | Path | None = None) -> ModelFile:
    """The record of one weights file: ``config`` as given, else its sidecar ``<name>.yaml``
    when there is one (the order in which ``Detector.load`` looks for a config)."""
    path = Path(weights)
    sidecar = path.with_suffix(".yaml")
    cfg = Path(config) if config is not None else sidecar if sidecar.is_file() else None
    return ModelFile(path.stem, path, cfg, origin_of(path))


def catalogue(weights_dir: Path | None = None, *, also: Iterable[ModelFile] = ()) -> list[ModelFile]:
    """Weights files under ``weights_dir`` (default ``weights/``): the official ``spai.pth``,
    then ``demo/*.pth``, then the other shipped demo folders' (``demo-*/*.pth``), then the other
    ``*.pth``; then ``also`` (e.g. the environment's file) where it is not one of them. Test
    fixtures live elsewhere and are never listed."""
    root = WEIGHTS_DIR if weights_dir is None else weights_dir
    official = root / OFFICIAL_WEIGHTS.name
    files = ([official] if official.is_file() else []) + sorted((root / "demo").glob("*.pth"))
    files += sorted(root.glob("demo-*/*.pth"))
    files += [p for p in sorted(root.glob("*.pth")) if p != official]
    found = [model_file(p) for p in files]
    seen = {m.path.resolve() for m in found}
    return found + [m for m in also if m.exists and m.path.resolve() not in seen]


def default_weights() -> Path:
    """The official weights if a user placed them in weights/, else the shipped demo model."""
    return OFFICIAL_WEIGHTS if OFFICIAL_WEIGHTS.is_file() else DEMO_WEIGHTS


def environment_model(environ: Mapping[str, str] | None = None) -> ModelFile | None:
    """``SPAI_MODEL_WEIGHTS`` (with ``SPAI_MODEL_CFG``) as a record, or None when unset."""
    environ = os.environ if environ is None else environ
    weights = environ.get(ENV_WEIGHTS)
    return model_file(weights, environ.get(ENV_CFG) or None) if weights else None


def active_model(
    explicit: str | Path | None = None,
    config: str | Path | None = None,
    *,
    saved: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ActiveModel:
    """Which model scores: ``explicit`` (with ``config``), else ``saved`` while its file exists,
    else the environment's ``SPAI_MODEL_WEIGHTS`` when ``environ`` is given, else
    weights/spai.pth, else the demo model. A saved default that is the environment's file keeps
    the environment's config."""
    if explicit is not None:
        return ActiveModel(model_file(explicit, config), "explicit", saved)
    env = environment_model(environ) if environ is not None else None
    if saved and Path(saved).is_file():
        if env is not None and Path(saved).resolve() == env.path.resolve():
            return ActiveModel(env, "environment", saved)
        return ActiveModel(model_file(saved), "saved", saved)
    if env is not None:
        return ActiveModel(env, "environment", saved)
    path = default_weights()
    return ActiveModel(model_file(path), OFFICIAL if path == OFFICIAL_WEIGHTS else DEMO, saved)


def weights_sha256(path: str | Path) -> str:
    """sha256 of a weights file, hashed once per file version (path, mtime, size)."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=64)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()
