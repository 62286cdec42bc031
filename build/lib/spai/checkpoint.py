"""Reading and writing SPAI checkpoints in the official container format.

Accepted files: the official ``{"model": state_dict, ...}`` container, this project's training
checkpoints (same container plus optimizer/scheduler/config), and a bare state dict. Loading is
strict about what matters: a missing or mis-shaped tensor is an error that names every such key;
unexpected extra keys (which the official loader silently ignores) load with a warning naming them.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "read_checkpoint",
    "extract_state_dict",
    "load_state",
    "save_training_checkpoint",
    "file_sha256",
]


class CheckpointError(RuntimeError):
    """The file is not a SPAI checkpoint that fits the model."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True when the file allows it (official training checkpoints
    pickle a yacs config, which needs weights_only=False: then a warning says so)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path} (see weights/README.md for where to get SPAI weights)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        warnings.warn(
            f"{path.name} holds pickled Python objects beyond tensors ({str(exc).splitlines()[0]}); "
            "loading it with weights_only=False: only do this for files you trust",
            stacklevel=2,
        )
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # not a torch file at all
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: {exc}") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict, found {type(obj).__name__}")
    return dict(obj)


def extract_state_dict(obj: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The model's state dict from a container (``model`` key) or a bare state dict.

    Keys under ``encoder.`` (MFM pre-training releases) are kept alone, prefix removed, as the
    official loader does.
    """
    state = obj.get("model", obj) if isinstance(obj.get("model"), Mapping) else obj
    if not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("no tensors found: not a model checkpoint")
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if any("encoder." in k for k in state):
        state = {k.split("encoder.", 1)[1]: v for k, v in state.items() if "encoder." in k}
    return state


def load_state(
    model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint"
) -> list[str]:
    """Load a state dict: missing or mis-shaped keys raise; extra keys warn. Returns the extras."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    bad_shape = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or bad_shape:
        lines = [f"{source} does not fit this SPAI configuration:"]
        if bad_shape:
            lines.append(f"  {len(bad_shape)} tensor(s) with the wrong shape:")
            lines += [f"    {s}" for s in bad_shape[:20]]
            if len(bad_shape) > 20:
                lines.append(f"    ... and {len(bad_shape) - 20} more")
        if missing:
            lines.append(f"  {len(missing)} missing key(s): " + _short_list(missing))
        lines.append("  (is the config (--cfg) the one this checkpoint was trained with?)")
        raise CheckpointError("\n".join(lines))
    if extra:
        warnings.warn(
            f"{source}: ignoring {len(extra)} key(s) the model does not use: {_short_list(extra)}",
            stacklevel=2,
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    return extra


def _short_list(keys: list[str], n: int = 12) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def save_training_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    config: Mapping[str, Any],
    epoch: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr_scheduler: Any = None,
    max_accuracy: float = 0.0,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the official container; the config is a plain dict so weights_only loading works."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj: dict[str, Any] = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "lr_scheduler": lr_scheduler.state_dict() if lr_scheduler is not None else None,
        "max_accuracy": max_accuracy,
        "epoch": epoch,
        "config": dict(config),
    }
    obj.update(extra or {})
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
