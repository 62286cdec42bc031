"""SPAI configuration: frozen dataclasses that read the official yacs/YAML key layout.

The official code keeps its settings in a yacs tree (``MODEL.VIT.EMBED_DIM`` ...). Here the same
tree is a set of frozen dataclasses whose field names are the official keys in lower case, so
``configs/spai.yaml`` and any official config load unchanged, and ``--opt KEY VALUE`` overrides
use the official dotted names.

    cfg = load_config("configs/spai.yaml", opts=[("MODEL.FRE.MASKING_RADIUS", "24")])
    cfg.model.fre.masking_radius   # 24
    cfg.to_dict()["MODEL"]["FRE"]  # official upper-case layout again
"""

from __future__ import annotations

import ast
import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable

import yaml

__all__ = [
    "VitConfig",
    "FreConfig",
    "ClsHeadConfig",
    "PatchVitConfig",
    "ModelConfig",
    "DataConfig",
    "AugConfig",
    "TrainConfig",
    "TestConfig",
    "Config",
    "load_config",
    "config_from_dict",
]


@dataclass(frozen=True)
class VitConfig:
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    patch_size: int = 16
    in_chans: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True  # learned q and v biases, k bias fixed at 0
    init_values: float | None = None  # layer-scale gammas; None -> none
    use_ape: bool = True  # learned absolute position embedding
    use_rpb: bool = False
    use_shared_rpb: bool = False
    use_mean_pooling: bool = True
    use_intermediate_layers: bool = True
    intermediate_layers: tuple[int, ...] = tuple(range(12))
    projection_dim: int = 1024
    projection_layers: int = 2
    patch_projection: bool = True
    patch_projection_per_feature: bool = True


@dataclass(frozen=True)
class FreConfig:
    masking_radius: int = 16  # low-pass disc radius in the shifted 224x224 spectrum
    projector_last_layer_activation_type: str | None = None
    original_image_features_branch: bool = True
    disable_reconstruction_similarity: bool = False


@dataclass(frozen=True)
class ClsHeadConfig:
    mlp_ratio: int = 3


@dataclass(frozen=True)
class PatchVitConfig:
    patch_stride: int = 224
    num_heads: int = 12
    attn_embed_dim: int = 1536
    minimum_patches: int = 4  # fewer grid cells -> five-crop fallback


@dataclass(frozen=True)
class ModelConfig:
    sid_approach: str = "freq_restoration"
    type: str = "vit"
    name: str = "finetune"
    model_weights: str = "mfm"
    drop_path_rate: float = 0.1
    num_classes: int = 2  # 2 classes -> one logit
    required_normalization: str = "positive_0_1"
    resolution_mode: str = "arbitrary"
    feature_extraction_batch: int = 400  # max crops per backbone call (memory knob)
    sid_dropout: float = 0.5
    vit: VitConfig = field(default_factory=VitConfig)
    fre: FreConfig = field(default_factory=FreConfig)
    cls_head: ClsHeadConfig = field(default_factory=ClsHeadConfig)
    patch_vit: PatchVitConfig = field(default_factory=PatchVitConfig)


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "csv_sid"
    img_size: int = 224
    batch_size: int = 72
    num_workers: int = 8
    pin_memory: bool = True
    prefetch_factor: int = 2
    test_prefetch_factor: int = 1
    augmented_views: int = 4  # views concatenated side by side in arbitrary-mode training
    min_crop_area: float = 0.2
    max_crop_area: float = 1.0
    data_path: str = ""
    csv_root_dir: str = ""


def _aug_conditions(raw: Any) -> tuple[tuple[str, float], ...]:
    """AUG.CONDITIONS as ((id, p), ...) from [{id, p}] mappings (any key case) or pairs."""
    out = []
    for i, item in enumerate(raw or ()):
        if isinstance(item, dict):
            keys = {str(k).lower(): v for k, v in item.items()}
            if set(keys) != {"id", "p"}:
                raise ValueError(f"AUG.CONDITIONS[{i}]: needs exactly the keys id and p, got {sorted(item)}")
            cid, p = keys["id"], keys["p"]
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            cid, p = item
        else:
            raise ValueError(f"AUG.CONDITIONS[{i}]: expected {{id: <condition id>, p: <0..1>}}, got {item!r}")
        if not isinstance(cid, str) or not cid:
            raise ValueError(f"AUG.CONDITIONS[{i}].id: must be a condition id, got {cid!r}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"AUG.CONDITIONS[{i}].p: must be a probability in [0, 1], got {p!r}")
        out.append((cid, float(p)))
    ids = [c for c, _ in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"AUG.CONDITIONS: a condition is listed twice: {ids}")
    return tuple(out)


@dataclass(frozen=True)
class AugConfig:
    color_jitter: float = 0.0
    horizontal_flip_prob: float = 0.5
    vertical_flip_prob: float = 0.5
    rotation_prob: float = 0.5
    rotation_degrees: int = 90
    gaussian_blur_prob: float = 0.5
    gaussian_noise_prob: float = 0.5
    jpeg_compression_prob: float = 0.5
    jpeg_min_quality: int = 50
    jpeg_max_quality: int = 100
    webp_compression_prob: float = 0.0
    sharpen_prob: float = 0.0
    # Registered robustness conditions applied to a training image before its views, each
    # with its probability: YAML [{id: meme, p: 0.2}, ...]; stored as ((id, p), ...).
    conditions: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", _aug_conditions(self.conditions))


@dataclass(frozen=True)
class TrainConfig:
    start_epoch: int = 0
    epochs: int = 35
    warmup_epochs: int = 5
    base_lr: float = 5e-4
    warmup_lr: float = 2.5e-7
    min_lr: float = 2.5e-7
    weight_decay: float = 0.05
    layer_decay: float = 0.8
    layer_decay_mode: str = "official"  # "official": configured but inert (as coded); "effective"
    clip_grad: float | None = None
    loss: str = "bce"
    accumulation_steps: int = 1
    use_checkpoint: bool = False
    optimizer_eps: float = 1e-8
    optimizer_betas: tuple[float, float] = (0.9, 0.999)
    auto_resume: bool = False


@dataclass(frozen=True)
class TestConfig:
    original_resolution: bool = True  # no resize; pad-if-smaller only
    max_size: int | None = None  # --resize-to: SmallestMaxSize
    export_image_patches: bool = False
    crop: bool = True


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    seed: int = 0
    print_freq: int = 100
    save_freq: int = 10
    output: str = "output"
    tag: str = "spai"
    extra: tuple[tuple[str, Any], ...] = ()  # official keys this code does not use, kept verbatim

    def to_dict(self) -> dict[str, Any]:
        """The official UPPER-CASE nested layout (JSON-serialisable)."""
        out = _to_upper(self)
        for key, value in self.extra:
            _set_path(out, key.split("."), value)
        return out

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def with_opts(self, opts: Iterable[tuple[str, Any]]) -> Config:
        """Apply official-style ``KEY VALUE`` overrides (string values are literal-evaluated)."""
        data = self.to_dict()
        for key, value in opts:
            _set_path(data, key.split("."), _parse_value(value))
        return config_from_dict(data)


def _parse_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value in ("None", "none", "null"):
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _set_path(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        tree = tree.setdefault(part.upper(), {})
    tree[parts[-1].upper()] = value


def _to_upper(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name.upper(): _to_upper(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "extra"}
    if isinstance(obj, tuple):
        return [_to_upper(v) for v in obj]
    return obj


def _coerce(value: Any, default: Any) -> Any:
    """Give YAML values the type of the dataclass default (tuples, the literal 'None')."""
    value = _parse_value(value) if isinstance(value, str) and not isinstance(default, str) else value
    if value == "None":
        return None
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _build(cls: type, data: dict[str, Any], prefix: str, unknown: list[tuple[str, Any]]) -> Any:
    kwargs: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
    for key, value in (data or {}).items():
        name = str(key).lower()
        path = f"{prefix}{str(key).upper()}"
        if name not in fields:
            unknown.append((path, value))
            continue
        default = cls()
        sub = getattr(default, name)
        if dataclasses.is_dataclass(sub):
            kwargs[name] = _build(type(sub), value or {}, path + ".", unknown)
        else:
            kwargs[name] = _coerce(value, sub)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from the official nested UPPER-CASE dict; unknown keys are kept in ``extra``."""
    unknown: list[tuple[str, Any]] = []
    cfg = _build(Config, data, "", unknown)
    return dataclasses.replace(cfg, extra=tuple(unknown))


def load_config(path: str | Path | None = None, opts: Iterable[tuple[str, Any]] = ()) -> Config:
    """Read an official-layout YAML (``BASE`` includes honoured) and apply ``--opt`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_yaml(Path(path))
    cfg = config_from_dict(data)
    if cfg.extra:
        names = ", ".join(k for k, _ in cfg.extra)
        warnings.warn(f"config keys not used by this implementation: {names}", stacklevel=2)
    opts = list(opts)
    return cfg.with_opts(opts) if opts else cfg


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    merged: dict[str, Any] = {}
    for base in data.pop("BASE", None) or []:
        if base:
            merged = _merge(merged, _read_yaml(path.parent / base))
    return _merge(merged, data)
