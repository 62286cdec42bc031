"""Weights files recorded as model rows (hashed, so a changed file is noticed)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from db.imagesets import sha256_file
from db.queries import get_or_create_model
from spai.weights import OFFICIAL


def register_model(
    session: Session,
    weights: str | Path,
    *,
    name: str | None = None,
    cfg: str | Path | None = None,
    origin: str = OFFICIAL,
    owner: str | None = None,
) -> int:
    """Record a weights file as a model (``owner``'s, hashing it) and return the model id. An
    existing model of that name whose recorded file or sha256 differs is refused
    (``ValueError``)."""
    path = Path(weights).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    config = {"cfg_path": str(Path(cfg).resolve())} if cfg is not None else {}
    digest = sha256_file(path)
    model = get_or_create_model(
        session, name or path.stem, origin=origin, path=str(path), sha256=digest, config=config, owner=owner
    )
    if model.sha256 != digest or model.path != str(path):
        raise ValueError(
            f"model {model.name!r} is already registered with {model.path} (sha256 "
            f"{(model.sha256 or '?')[:12]}...); {path} (sha256 {digest[:12]}...) is a different "
            "file: register it under a new name"
        )
    return model.id
