"""Training and fine-tuning SPAI (the recipe of spec section 7).

    result = train(load_config("configs/demo.yaml"), TrainOptions(data_path=Path("data/demo/demo.csv")))

- data: official CSV (``image,class,split``); ``train`` rows train, ``val`` rows validate, test
  CSVs are scored every epoch; each training sample is ``augmented_views`` augmented views side
  by side (``spai.augment``); unreadable images are skipped with their reason, never fatal;
- loss ``BCEWithLogitsLoss``; AdamW (eps, betas from the config), no weight decay on 1-D
  parameters and biases; layer-wise lr decay in two modes: ``"official"`` (configured but inert,
  as in the official code, for exact reproduction) or ``"effective"`` (ViT block i gets
  ``layer_decay ** (depth + 1 - (i + 1))``, the embeddings one power more, the heads 1.0);
- schedule: linear warm-up from ``warmup_lr`` then cosine to ``min_lr``, per optimiser step
  (timm ``CosineLRScheduler`` with ``t_in_epochs=False``);
- torch.amp mixed precision on CUDA, gradient accumulation, optional gradient clipping;
- checkpoints in the official layout (``model, optimizer, lr_scheduler, max_accuracy, epoch,
  config, step``; config as a plain dict so ``torch.load(weights_only=True)`` works):
  ``ckpt_last.pth`` after every epoch and on cancel (resume point), ``ckpt_epoch_<n>.pth`` when
  the validation loss improves (or every epoch with ``save_all``);
- ``metrics.jsonl``: one line per optimiser step and per epoch, for live curves;
- ``on_progress(event) -> bool | None``: called with every logged event; ``False`` cancels.

Randomness is keyed by (seed, epoch, sample) for augmentation and (seed, step) for dropout,
so a resumed run repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustness.metrics import acc_at, ap, auc
from spai.augment import apply_conditions, train_views
from spai.checkpoint import extract_state_dict, load_state, read_checkpoint, save_training_checkpoint
from spai.config import Config
from core.imageio import ImageLoadError, open_rgb, resolve_under_root, to_model_input
from spai.model import SPAI, build_model

__all__ = [
    "Sample",
    "TrainOptions",
    "TrainResult",
    "read_csv_samples",
    "param_groups",
    "WarmupCosine",
    "load_pretrained_backbone",
    "evaluate",
    "train",
]

ProgressFn = Callable[[dict[str, Any]], "bool | None"]
LAYER_DECAY_MODES = ("official", "effective")
CKPT_LAST = "ckpt_last.pth"
METRICS_FILE = "metrics.jsonl"
CONDITIONS_FILE = "aug_conditions.jsonl"  # one line per condition applied to a training image
CONDITION_STREAM = 11  # rng stream id of AUG.CONDITIONS draws (views use the plain key)


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Sample:
    """One labelled image of a CSV (label 1 = AI-generated)."""

    path: Path
    label: int
    split: str


@dataclass(frozen=True)
class TrainOptions:
    """Per-run settings that the official code takes from the command line."""

    data_path: Path  # train CSV (its train and val rows are used)
    csv_root_dir: Path | None = None  # default: the CSV's folder
    output: Path | None = None  # default: cfg.output / cfg.tag
    pretrained: Path | None = None  # MFM weights (keys under "encoder."): backbone frozen
    resume: Path | None = None  # a checkpoint written by train()
    init_from: Path | None = None  # a model's weights to fine-tune (same architecture as cfg)
    test_csvs: tuple[tuple[Path, Path | None], ...] = ()  # (csv, root or None)
    device: str = "auto"  # "auto" -> cuda if available else cpu
    amp: bool = True  # torch.amp autocast + GradScaler, CUDA only
    save_all: bool = False
    num_workers: int | None = None  # None -> cfg.data.num_workers
    pin_memory: bool | None = None  # None -> cfg.data.pin_memory (CUDA only)
    prefetch_factor: int | None = None  # None -> cfg.data.prefetch_factor
    log_every: int = 1  # steps between metrics.jsonl step lines


@dataclass(frozen=True)
class TrainResult:
    """What a call to train() produced."""

    output: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_epoch: int | None
    steps: int
    cancelled: bool
    history: list[dict[str, Any]] = field(default_factory=list)  # the epoch events
    skipped: dict[str, str] = field(default_factory=dict)  # image -> why it was skipped


def read_csv_samples(csv_path: Path, root: Path | None = None) -> list[Sample]:
    """Rows of an official CSV (``image``, ``class``, ``split``), paths joined to `root`; a
    path escaping `root` is a ``ValueError`` naming the row."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV not found: {csv_path}")
    root = Path(root) if root is not None else csv_path.parent
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"image", "class", "split"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
        out = []
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["class"])
            except (TypeError, ValueError):
                raise ValueError(f"{csv_path}:{line}: class must be 0 or 1, got {row['class']!r}")
            if label not in (0, 1):
                raise ValueError(f"{csv_path}:{line}: class must be 0 or 1, got {label}")
            try:  # a row whose path leads out of the root (.., absolute, symlink) is refused
                path = resolve_under_root(root, (row["image"] or "").strip())
            except ImageLoadError as exc:
                raise ValueError(f"{csv_path}:{line}: {exc}") from None
            out.append(Sample(path, label, row["split"].strip()))
    return out


class _ViewsDataset(torch.utils.data.Dataset):
    """Training samples as augmented multi-view tensors; unreadable images yield None."""

    def __init__(self, samples: Sequence[Sample], cfg: Config) -> None:
        self.samples = list(samples)
        self.cfg = cfg
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, Any, int, list[dict[str, Any]]]:
        """(views, label, i, conditions applied) or (None, why unreadable, i, [])."""
        s = self.samples[i]
        try:
            img = open_rgb(s.path)
        except ImageLoadError as exc:
            return None, f"{s.path}: {exc}", i, []
        applied: list[dict[str, Any]] = []
        if self.cfg.aug.conditions:  # own stream: adding conditions keeps the views' randomness
            crng = np.random.default_rng([self.cfg.seed, self.epoch, i, CONDITION_STREAM])
            img, applied = apply_conditions(
                img, crng, self.cfg.aug.conditions, run_seed=self.cfg.seed, epoch=self.epoch, image=str(s.path)
            )
            applied = [{"epoch": self.epoch, "image": str(s.path), **a} for a in applied]
        rng = np.random.default_rng([self.cfg.seed, self.epoch, i])
        return train_views(img, rng, self.cfg), float(s.label), i, applied


def _collate(
    items: list[tuple[Any, Any, int, list]],
) -> tuple[torch.Tensor | None, torch.Tensor, list[str], list[dict[str, Any]]]:
    good = [(x, y) for x, y, _, _ in items if x is not None]
    bad = [str(msg) for x, msg, _, _ in items if x is None]
    applied = [a for *_, app in items for a in app]
    if not good:
        return None, torch.empty(0), bad, applied
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), bad, applied


class _EpochSampler(torch.utils.data.Sampler[int]):
    """Seeded permutation per epoch, optionally starting part-way (for exact resume)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch, self.start = n, seed, 0, 0

    def __iter__(self) -> Iterator[int]:
        perm = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.n)
        return iter(perm[self.start :].tolist())

    def __len__(self) -> int:
        return self.n - self.start


# ----------------------------------------------------------------------------- optimisation


def _layer_id(name: str, depth: int) -> int:
    """0 = embeddings, 1..depth = ViT blocks, depth + 1 = everything after the backbone."""
    if re.match(r"mfvit\.vit\.(cls_token|pos_embed|patch_embed|mask_token)", name):
        return 0
    m = re.match(r"mfvit\.vit\.blocks\.(\d+)\.", name)
    if m:
        return int(m.group(1)) + 1
    return depth + 1


def param_groups(
    model: nn.Module, weight_decay: float, layer_decay: float, mode: str = "official"
) -> list[dict[str, Any]]:
    """AdamW parameter groups: no decay on 1-D params and biases; per-layer ``lr_scale``.

    mode "official": every group has lr_scale 1.0 (the official name lookup never matches
    SPAI's parameter names). mode "effective": scale = layer_decay ** (depth + 1 - layer_id).
    """
    if mode not in LAYER_DECAY_MODES:
        raise ValueError(f"unknown layer decay mode {mode!r}; valid: {', '.join(LAYER_DECAY_MODES)}")
    depth = len(model.get_vision_transformer().blocks) if hasattr(model, "get_vision_transformer") else 0
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim <= 1 or name.endswith(".bias")
        lid = _layer_id(name, depth) if mode == "effective" else depth + 1
        key = (lid, no_decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "names": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr_scale": float(layer_decay ** (depth + 1 - lid)),
            }
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


class WarmupCosine:
    """Per-step lr: linear warm-up, then cosine over the whole run (timm CosineLRScheduler).

    Step t < warmup: warmup_lr + t * (base_lr - warmup_lr) / warmup; afterwards
    min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total)) / 2. Each group gets lr * lr_scale.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        base_lr: float,
        min_lr: float,
        warmup_lr: float,
        warmup_steps: int,
        total_steps: int,
    ) -> None:
        self.optimizer = optimizer
        self.base_lr, self.min_lr, self.warmup_lr = base_lr, min_lr, warmup_lr
        self.warmup_steps, self.total_steps = warmup_steps, max(1, total_steps)
        self.last_step = 0

    def lr_at(self, t: int) -> float:
        if t < self.warmup_steps:
            return self.warmup_lr + t * (self.base_lr - self.warmup_lr) / self.warmup_steps
        t = min(t, self.total_steps)
        cos = 0.5 * (1.0 + math.cos(math.pi * t / self.total_steps))
        return self.min_lr + (self.base_lr - self.min_lr) * cos

    def step_update(self, t: int) -> float:
        """Set every group's lr for optimiser step `t`; returns the unscaled lr."""
        lr = self.lr_at(t)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        self.last_step = t
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


# ----------------------------------------------------------------------------- checkpoints


def load_pretrained_backbone(model: SPAI, path: Path) -> dict[str, list[str]]:
    """Load MFM-style weights (keys under ``encoder.``, or plain ViT keys) into the backbone.

    Non-strict as the official loader, but refuses a file that matches no backbone key and
    reports shape mismatches by name. Returns the missing and unexpected key lists.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (or a dict with 'model'), got {type(state)}")
    if any("encoder." in k for k in state):
        state = {k.split("encoder.", 1)[1]: v for k, v in state.items() if "encoder." in k}
    vit = model.get_vision_transformer()
    own = vit.state_dict()
    bad = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad:
        raise ValueError(f"{path}: shape mismatch for backbone keys: " + "; ".join(bad[:10]))
    if not any(k in own for k in state):
        raise ValueError(f"{path}: no key matches the ViT backbone (e.g. {next(iter(own))!r})")
    result = vit.load_state_dict(state, strict=False)
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}


def _save(
    path: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: WarmupCosine,
    scaler: torch.amp.GradScaler | None,
    cfg: Config,
    epoch: int,
    step: int,
    best: dict[str, Any],
) -> None:
    extra: dict[str, Any] = {"step": step, "best": best}  # step: optimiser steps done
    if scaler is not None:
        extra["scaler"] = scaler.state_dict()
    save_training_checkpoint(
        path,
        model,
        config=cfg.to_dict(),
        epoch=epoch,
        optimizer=opt,
        lr_scheduler=sched,
        max_accuracy=float(best.get("val_acc", 0.0)),
        extra=extra,
    )


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: SPAI, samples: Sequence[Sample], device: torch.device, amp: bool = False
) -> tuple[dict[str, float], dict[str, str]]:
    """Score whole images (inference path) -> ({loss, auc, ap, acc, n}, skipped)."""
    model.eval()
    labels, logits, skipped = [], [], {}
    for s in samples:
        try:
            x = to_model_input(open_rgb(s.path), model.img_size).to(device)
        except ImageLoadError as exc:
            skipped[str(s.path)] = str(exc)
            continue
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            logits.append(float(model.forward_image(x).logit))
        labels.append(s.label)
    y = np.asarray(labels, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    out: dict[str, float] = {"n": float(len(y))}
    if len(y) == 0:
        return out | {"loss": math.nan, "auc": math.nan, "ap": math.nan, "acc": math.nan}, skipped
    p = 1.0 / (1.0 + np.exp(-z))
    out["loss"] = float(np.mean(np.logaddexp(0.0, z) - y * z))  # BCE with logits
    out["acc"] = acc_at(y, p)  # robustness.metrics: the one decision rule (score > 0.5)
    both = 0 < y.sum() < len(y)
    out["auc"] = auc(y, p) if both else math.nan
    out["ap"] = ap(y, p) if both else math.nan
    return out, skipped


# ----------------------------------------------------------------------------- the loop


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return dev


def _check_conditions(conditions: tuple[tuple[str, float], ...]) -> None:
    """Every AUG.CONDITIONS id must be registered (the error lists the valid ones)."""
    from robustness.registry import get

    for i, (cid, _) in enumerate(conditions):
        try:
            get(cid)
        except KeyError as exc:
            raise ValueError(f"AUG.CONDITIONS[{i}].id: {exc.args[0]}") from None


class _ConditionLog:
    """Appends each applied training condition (epoch, image, condition, seed) to a JSONL
    file and counts them per condition until ``take_counts``."""

    def __init__(self, path: Path) -> None:
        self.path, self.counts = path, {}

    def __call__(self, applied: list[dict[str, Any]]) -> None:
        if not applied:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            for a in applied:
                fh.write(json.dumps(a) + "\n")
                self.counts[a["condition"]] = self.counts.get(a["condition"], 0) + 1

    def take_counts(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


class _Log:
    """Appends events to metrics.jsonl and forwards them to the progress callback."""

    def __init__(self, path: Path, on_progress: ProgressFn | None) -> None:
        self.path, self.on_progress = path, on_progress

    def __call__(self, event: dict[str, Any], write: bool = True) -> bool:
        if write:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(event, allow_nan=True) + "\n")
        return self.on_progress is None or self.on_progress(event) is not False


@dataclass
class _Run:
    """What one training run holds while it runs; ``step``, ``best`` and the logs change."""

    cfg: Config
    options: TrainOptions
    out: Path
    log: _Log
    device: torch.device
    use_amp: bool
    model: SPAI
    opt: torch.optim.Optimizer
    sched: WarmupCosine
    scaler: torch.amp.GradScaler | None
    train_s: list[Sample]
    val_s: list[Sample]
    tests: dict[str, list[Sample]]  # test CSV -> its test rows, scored every epoch
    accum: int  # micro-batches per optimiser step
    steps_per_epoch: int  # optimiser steps
    step: int = 0  # optimiser steps done
    best: dict[str, Any] = field(default_factory=lambda: {"val_loss": math.inf, "epoch": None})
    best_path: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # image -> why it was left out
    history: list[dict[str, Any]] = field(default_factory=list)  # one event per epoch
    last_loss: float = math.nan
    t0: float = 0.0


def _setup(cfg: Config, options: TrainOptions, on_progress: ProgressFn | None) -> _Run:
    """Read the data, build the model (pretrained backbone or init weights), the optimiser,
    the schedule and the gradient scaler."""
    t_cfg = cfg.train
    if t_cfg.loss != "bce":
        raise ValueError(f"TRAIN.LOSS {t_cfg.loss!r} is not supported; valid: bce")
    device = _device(options.device)
    out = Path(options.output) if options.output else Path(cfg.output) / cfg.tag
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(out / METRICS_FILE, on_progress)

    samples = read_csv_samples(options.data_path, options.csv_root_dir)
    train_s = [s for s in samples if s.split == "train"]
    val_s = [s for s in samples if s.split == "val"]
    if not train_s:
        raise ValueError(f"{options.data_path}: no rows with split 'train'")
    tests = {str(c): [s for s in read_csv_samples(c, r) if s.split == "test"] for c, r in options.test_csvs}

    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    if options.pretrained is not None:
        info = load_pretrained_backbone(model, Path(options.pretrained))
        model.freeze_backbone(True)
        log(
            {
                "type": "info",
                "pretrained": str(options.pretrained),
                "missing": len(info["missing"]),
                "unexpected": len(info["unexpected"]),
            }
        )
    else:
        model.freeze_backbone(False)
    if options.init_from is not None and options.resume is None:
        load_state(model, extract_state_dict(read_checkpoint(options.init_from)), source=str(options.init_from))
        log({"type": "info", "init_from": str(options.init_from)})
    model.to(device)

    groups = param_groups(model, t_cfg.weight_decay, t_cfg.layer_decay, t_cfg.layer_decay_mode)
    opt = torch.optim.AdamW(
        [{k: v for k, v in g.items() if k != "names"} for g in groups],
        lr=t_cfg.base_lr,
        eps=t_cfg.optimizer_eps,
        betas=tuple(t_cfg.optimizer_betas),
    )
    accum = max(1, t_cfg.accumulation_steps)
    micro_per_epoch = math.ceil(len(train_s) / cfg.data.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / accum)
    sched = WarmupCosine(
        opt,
        t_cfg.base_lr,
        t_cfg.min_lr,
        t_cfg.warmup_lr,
        t_cfg.warmup_epochs * steps_per_epoch,
        t_cfg.epochs * steps_per_epoch,
    )
    use_amp = options.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    return _Run(
        cfg,
        options,
        out,
        log,
        device,
        use_amp,
        model,
        opt,
        sched,
        scaler,
        train_s,
        val_s,
        tests,
        accum,
        steps_per_epoch,
    )


def _resume(run: _Run, path: Path) -> None:
    """Continue from a training checkpoint: weights, optimiser, schedule, scaler, the step
    count and the best epoch so far."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["optimizer"])
    run.sched.load_state_dict(ck["lr_scheduler"])
    if run.scaler is not None and "scaler" in ck:
        run.scaler.load_state_dict(ck["scaler"])
    run.step = int(ck.get("step", (ck["epoch"] + 1) * run.steps_per_epoch))
    run.best = dict(ck.get("best", run.best))
    if run.best.get("epoch") is not None:
        cand = run.out / f"ckpt_epoch_{run.best['epoch']}.pth"
        run.best_path = cand if cand.is_file() else None
    run.log({"type": "info", "resumed_from": str(path), "step": run.step})


def _loader(run: _Run) -> tuple[torch.utils.data.DataLoader, _ConditionLog]:
    """The training batches (augmented views; AUG.CONDITIONS checked, logged and recorded)."""
    cfg, options = run.cfg, run.options
    if cfg.aug.conditions:
        _check_conditions(cfg.aug.conditions)
        run.log(
            {
                "type": "info",
                "aug_conditions": [list(c) for c in cfg.aug.conditions],
                "conditions_file": CONDITIONS_FILE,
            }
        )
    record_conditions = _ConditionLog(run.out / CONDITIONS_FILE)
    dataset = _ViewsDataset(run.train_s, cfg)
    sampler = _EpochSampler(len(run.train_s), cfg.seed)
    workers = cfg.data.num_workers if options.num_workers is None else options.num_workers
    pin = cfg.data.pin_memory if options.pin_memory is None else options.pin_memory
    loader_kw: dict[str, Any] = {
        "batch_size": cfg.data.batch_size,
        "sampler": sampler,
        "collate_fn": _collate,
        "num_workers": workers,
        "pin_memory": pin and run.device.type == "cuda",
    }
    if workers > 0:
        loader_kw["prefetch_factor"] = options.prefetch_factor or cfg.data.prefetch_factor
    return torch.utils.data.DataLoader(dataset, **loader_kw), record_conditions


def _optimizer_step(run: _Run) -> tuple[float, torch.Tensor]:
    """One optimiser step on the accumulated gradients (schedule, unscale, clip, step, zero);
    returns (learning rate, gradient norm before clipping)."""
    lr = run.sched.step_update(run.step)
    if run.scaler is not None:
        run.scaler.unscale_(run.opt)
    norm = nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.train.clip_grad or math.inf)
    if run.scaler is not None:
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    run.step += 1
    return lr, norm


def _train_epoch(run: _Run, loader: torch.utils.data.DataLoader, record_conditions: _ConditionLog, epoch: int) -> bool:
    """The optimiser steps of one epoch (from the resume point within it); False when the
    progress callback cancelled."""
    cfg, batch = run.cfg, run.cfg.data.batch_size
    loader.dataset.epoch = loader.sampler.epoch = epoch  # keys the augmentation and the order
    loader.sampler.start = (run.step - epoch * run.steps_per_epoch) * run.accum * batch
    run.model.train()
    run.opt.zero_grad(set_to_none=True)
    loss_fn = nn.BCEWithLogitsLoss()
    pending = 0  # micro-batches accumulated since the last optimiser step
    for x, y, bad, applied in loader:
        for msg in bad:
            run.skipped.setdefault(msg.split(": ", 1)[0], msg.split(": ", 1)[-1])
        record_conditions(applied)
        if x is not None:
            torch.manual_seed(cfg.seed * 1_000_003 + run.step)  # dropout / drop-path per step
            x, y = x.to(run.device, non_blocking=True), y.to(run.device)
            with torch.autocast(run.device.type, enabled=run.use_amp):
                logits = run.model.forward_batch(x)  # B
            loss = loss_fn(logits.float(), y) / run.accum
            (run.scaler.scale(loss) if run.scaler else loss).backward()
            run.last_loss = float(loss.detach()) * run.accum
        pending += 1
        if pending < run.accum:
            continue
        pending = 0
        lr, norm = _optimizer_step(run)
        event = {
            "type": "step",
            "step": run.step,
            "epoch": epoch,
            "loss": run.last_loss,
            "lr": lr,
            "grad_norm": float(norm),
            "elapsed_s": round(time.perf_counter() - run.t0, 3),
            "total_steps": cfg.train.epochs * run.steps_per_epoch,
        }
        if not run.log(event, write=run.step % run.options.log_every == 0):
            return False
    if pending:  # an unfinished accumulation at the end of the epoch still counts
        _optimizer_step(run)
    return True


def _end_of_epoch(run: _Run, epoch: int, record_conditions: _ConditionLog) -> bool:
    """Validate, score the test CSVs, keep the best epoch, save the checkpoints and log the
    epoch; False when the progress callback cancelled."""
    val, bad_val = evaluate(run.model, run.val_s, run.device, run.use_amp)
    run.skipped.update(bad_val)
    ev: dict[str, Any] = {"type": "epoch", "epoch": epoch, "step": run.step, **{f"val_{k}": v for k, v in val.items()}}
    if run.cfg.aug.conditions:
        ev["aug_conditions"] = record_conditions.take_counts()
    for name, rows in run.tests.items():
        res, bad_t = evaluate(run.model, rows, run.device, run.use_amp)
        run.skipped.update(bad_t)
        ev["test"] = {**ev.get("test", {}), name: res}
    improved = bool(run.val_s) and val["loss"] < run.best["val_loss"]
    if improved or not run.val_s:
        run.best = {
            "val_loss": val.get("loss", math.nan),
            "val_acc": val.get("acc", 0.0),
            "val_auc": val.get("auc", math.nan),
            "epoch": epoch,
        }
    ev["best"] = improved
    if improved or run.options.save_all or not run.val_s:
        path = run.out / f"ckpt_epoch_{epoch}.pth"
        _save_run(run, path, epoch)
        if improved or not run.val_s:
            run.best_path = path
    _save_run(run, run.out / CKPT_LAST, epoch)
    run.history.append(ev)
    return run.log(ev)


def _save_run(run: _Run, path: Path, epoch: int) -> None:
    _save(path, run.model, run.opt, run.sched, run.scaler, run.cfg, epoch, run.step, run.best)


def train(cfg: Config, options: TrainOptions, on_progress: ProgressFn | None = None) -> TrainResult:
    """Train SPAI per `cfg` on `options.data_path`; returns where the checkpoints are.

    Setup (data, model, optimiser, schedule), resume (a training checkpoint, if given), then
    per epoch the training steps and the end of the epoch (validation, tests, checkpoints).
    """
    run = _setup(cfg, options, on_progress)
    if options.resume is not None:
        _resume(run, Path(options.resume))
    loader, record_conditions = _loader(run)
    cancelled = False
    run.t0 = time.perf_counter()
    for epoch in range(run.step // run.steps_per_epoch, cfg.train.epochs):
        if not _train_epoch(run, loader, record_conditions, epoch) or not _end_of_epoch(run, epoch, record_conditions):
            cancelled = True
            break
    if cancelled:  # the resume point: step counts optimiser steps, epoch the completed ones
        _save_run(run, run.out / CKPT_LAST, run.step // run.steps_per_epoch - 1)
    if run.skipped:
        run.log({"type": "info", "skipped": run.skipped})
    return TrainResult(
        run.out,
        run.out / CKPT_LAST,
        run.best_path,
        run.best.get("epoch"),
        run.step,
        cancelled,
        run.history,
        run.skipped,
    )
