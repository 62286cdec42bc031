"""Reading and writing SPAI checkpoints in the official container format.

Accepted files: the official ``{"model": state_dict, ...}`` container, this project's training
checkpoints (same container plus optimizer/scheduler/config), and a bare state dict. Loading is
strict about what matters: a missing or mis-shaped tensor is an error that names every such key;
unexpected extra keys (which the official loader silently ignores) load with a warning naming them.

Loading never runs code from the file: only ``torch.load(weights_only=True)`` is used. The
official training checkpoints' extra objects (a yacs ``CfgNode`` config, numpy scalars such as
``max_accuracy``) are allowed by name through ``torch.serialization.add_safe_globals``: the
config is rebuilt as a plain dict subclass, never by importing yacs. Any other Python object is
refused with the names it uses; ``python -m spai convert-checkpoint --trust IN OUT`` rewrites a
file one trusts as a plain state dict.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "OfficialConfigNode",
    "read_checkpoint",
    "unsafe_globals",
    "convert_trusted",
    "extract_state_dict",
    "load_state",
    "save_training_checkpoint",
    "file_sha256",
]


class CheckpointError(RuntimeError):
    """The file is not a SPAI checkpoint that fits the model."""


class OfficialConfigNode:
    """Stands in for ``yacs.config.CfgNode`` when an official training checkpoint is read: the
    node is rebuilt as an ``OrderedDict`` (the only mapping the weights-only unpickler fills and
    gives attributes to; yacs' flags such as ``__immutable__`` land in its ``__dict__``)."""

    def __new__(cls, *args: Any) -> OrderedDict:  # type: ignore[misc]
        return OrderedDict()


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
LEGACY_MAGIC = b"\x80\x02"  # older torch.save: a protocol-2 pickle stream
SAFE_GLOBALS: list[Any] = [  # objects the official training checkpoints hold beyond tensors
    (OfficialConfigNode, "yacs.config.CfgNode"),
    np.dtype,
    (np._core.multiarray.scalar, "numpy._core.multiarray.scalar"),  # numpy 2 checkpoints
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),  # numpy 1 checkpoints
    *{type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)},
]
torch.serialization.add_safe_globals(SAFE_GLOBALS)


def read_checkpoint(path: str | Path, *, expect_sha256: str | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``; anything else is refused.

    ``expect_sha256``: the hash recorded for this model; a file whose content changed since is
    refused before it is read.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (see weights/README.md for where to get SPAI weights)")
    if expect_sha256 is not None and (actual := file_sha256(path)) != expect_sha256:
        raise CheckpointError(
            f"{path} changed since the model was registered (sha256 {actual[:12]}..., "
            f"registered {expect_sha256[:12]}...): refusing to load it; register the new file "
            "as a new model"
        )
    _check_container(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = ", ".join(unsafe_globals(path)) or "unknown objects"
        raise CheckpointError(
            f"{path} holds Python objects beyond tensors ({names}): not loaded, since "
            "unpickling them could run code; if you trust the file, convert it once with "
            "python -m spai convert-checkpoint --trust IN OUT"
        ) from None
    except Exception as exc:  # a damaged archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read {path}: truncated or corrupt PyTorch checkpoint ({first})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict, found {type(obj).__name__}")
    return {k: _plain(v) if k == "config" else v for k, v in obj.items()}


def _check_container(path: Path) -> None:
    """Refuse a file that is not a torch.save archive at all (an HTML page, text, an image)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_MAGIC):
        return
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): not a PyTorch checkpoint")
    text = head.decode("utf-8", "replace").lstrip().lower()
    what = (
        "an HTML page (a download that saved a web page instead of the weights?)"
        if text.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body"))
        else "text"
        if head.isascii() and all(b >= 9 for b in head)
        else "unknown data"
    )
    raise CheckpointError(f"{path} is not a PyTorch checkpoint: it holds {what}, starting {head[:24]!r}")


def _plain(value: Any) -> Any:
    """Nested config objects as plain dicts and lists (an ``OfficialConfigNode`` -> dict)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def unsafe_globals(path: str | Path) -> list[str]:
    """Names of the Python objects a checkpoint needs beyond what loading allows (read from
    the pickle opcodes, nothing executed); empty for files in the legacy format."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # legacy (non-zip) format or a damaged archive: no names to offer
        return []


def convert_trusted(src: str | Path, dst: str | Path) -> tuple[Path, list[str]]:
    """Rewrite a checkpoint the user trusts as ``{"model": state_dict}`` that loads with
    ``weights_only=True``. The objects named in the file are allowed for this one load (still
    through the weights-only unpickler); returns the output path and those names."""
    import importlib

    src, dst = Path(src), Path(dst)
    _check_container(src)
    names = unsafe_globals(src)
    allowed = []
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            allowed.append((getattr(importlib.import_module(module), attr), name))
        except (ImportError, AttributeError) as exc:
            raise CheckpointError(f"{src} needs {name}, which cannot be imported here: {exc}")
    with torch.serialization.safe_globals(allowed):
        try:
            obj = torch.load(src, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot convert {src}: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{src}: expected a dict, found {type(obj).__name__}")
    state = extract_state_dict(obj)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    torch.save({"model": state}, tmp)
    tmp.replace(dst)
    return dst, names


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


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> list[str]:
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
