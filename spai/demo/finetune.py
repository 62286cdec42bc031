"""Robustness-aware fine-tuning of the demo model (issue 17.3), as one command.

    python -m spai.demo finetune     # writes weights/demo-robust/{spai_demo_robust.pth,.yaml,
                                     #   MODEL_CARD.md, eval.json}

Steps: the demo set (reused when built with the base model's seed, else built) -> the shipped demo
model trained further with ``configs/demo-robust.yaml`` (``AUG.CONDITIONS``: meme, screenshot and
Instagram-filter applied to training images with their probabilities) through
``spai.training.train(init_from=...)`` -> the last epoch shipped (no selection on test data) ->
the base and the fine-tuned model measured per condition on the test split by
``spai.demo.reproduce.evaluate_split`` -> a card with the before/after table.

Seeds: a test variant's condition seed is ``robustness.registry.seed_for(image, condition)``, 63
bits; a training application's is ``spai.augment.condition_seed(...)``, the same hash of
("train", run seed, epoch, image) with bit 63 set. The two sets cannot meet, and the command
checks it on the seeds it actually used (``seeds`` in eval.json). The training images are the
train split's, the test images other photos' (the set is split by photo).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from spai.demo.reproduce import MAIN_CONDITIONS, evaluate_split, ship_checkpoint

__all__ = ["FINETUNE_CONFIG", "FINETUNE_TARGETS", "WEIGHTS_NAME", "finetune", "seed_check"]

FINETUNE_CONFIG = Path("configs/demo-robust.yaml")
WEIGHTS_NAME = "spai_demo_robust.pth"  # its config is the sidecar spai_demo_robust.yaml
FINETUNE_TARGETS = {  # issue 17.3: AUC change wanted per condition (reported, not asserted)
    "screenshot": ("up by at least", 0.05),
    "meme": ("up by at least", 0.05),
    "original": ("down by at most", -0.01),
}


def _load_avg() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def _demo_csv(data_dir: Path, build_seed: int, log: Callable[[str], None]) -> tuple[Path, dict]:
    """The demo set in `data_dir` (built with `build_seed` when absent); another seed's set is
    refused, since the base model's test split would then contain photos it trained on."""
    from spai.demo.build import BuildConfig, build_demo_set

    csv_path = data_dir / "demo.csv"
    if not csv_path.is_file():
        log(f"no demo set at {data_dir}: building it (python -m spai.demo build --seed {build_seed})")
        build_demo_set(BuildConfig(output=data_dir, seed=build_seed), log=log)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    if int(manifest["seed"]) != build_seed:
        raise ValueError(
            f"{data_dir} was built with seed {manifest['seed']}, not {build_seed} "
            "(the base model's set); rebuild it or pass --data <another folder>"
        )
    return csv_path, manifest


def seed_check(conditions_log: Path, csv_path: Path, conditions: Sequence[str], split: str = "test") -> dict[str, Any]:
    """Compare the condition seeds training used (``aug_conditions.jsonl``) with the seeds the
    evaluation derives for the `split` rows of `csv_path` under `conditions`."""
    import csv

    from robustness.registry import seed_for
    from spai.augment import TRAIN_SEED_BIT

    train_seeds, train_images = set(), set()
    if conditions_log.is_file():
        for line in conditions_log.read_text().splitlines():
            rec = json.loads(line)
            train_seeds.add(int(rec["seed"]))
            train_images.add(Path(rec["image"]).resolve().as_posix())
    with csv_path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    eval_seeds = {seed_for(r["image"], cid) for r in rows for cid in conditions if cid != "original"}
    root = csv_path.parent
    eval_images = {(root / r["image"]).resolve().as_posix() for r in rows}
    return {
        "training_applications_seeds": len(train_seeds),
        "training_seeds_with_bit_63": sum(s >= TRAIN_SEED_BIT for s in train_seeds),
        "evaluation_seeds": len(eval_seeds),
        "evaluation_seeds_below_2_63": sum(s < TRAIN_SEED_BIT for s in eval_seeds),
        "shared_seeds": len(train_seeds & eval_seeds),
        "training_images_conditioned": len(train_images),
        "test_images_among_them": len(train_images & eval_images),
    }


def _resolved_yaml(cfg: Any, source: Path) -> str:
    """The run's whole config as one YAML file (no BASE), loadable by ``load_config``."""
    head = (
        f"# The config spai_demo_robust.pth was fine-tuned with: {source.as_posix()} with its "
        "BASE resolved\n# (written by python -m spai.demo finetune).\n"
    )
    return head + yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def finetune(
    data_dir: Path = Path("data/demo"),
    base: Path = Path("weights/demo/spai_demo.pth"),
    out_dir: Path = Path("weights/demo-robust"),
    run_dir: Path = Path("output/demo-robust"),
    config: Path = FINETUNE_CONFIG,
    epochs: int | None = None,
    seed: int = 0,
    build_seed: int = 0,
    conditions: Sequence[str] = MAIN_CONDITIONS,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune `base` with `config` (which must set AUG.CONDITIONS) on the demo set in
    `data_dir`, evaluate before and after per condition, and write `out_dir` with its card."""
    from spai.checkpoint import file_sha256
    from spai.config import load_config
    from spai.training import CONDITIONS_FILE, TrainOptions, train

    t0 = time.perf_counter()
    opts: list[tuple[str, Any]] = [("SEED", seed)]
    if epochs is not None:
        opts.append(("TRAIN.EPOCHS", epochs))
    cfg = load_config(config, opts)
    if not cfg.aug.conditions:
        raise ValueError(f"{config}: AUG.CONDITIONS is empty; a robustness fine-tune needs at least one condition")
    if not Path(base).is_file():
        raise FileNotFoundError(f"base model not found: {base}")
    csv_path, manifest = _demo_csv(data_dir, build_seed, log)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    loads = [_load_avg()]

    def progress(event: dict[str, Any]) -> None:
        if event["type"] == "epoch":
            loads.append(_load_avg())
            log(
                f"epoch {event['epoch']}: val loss {event['val_loss']:.4f} AUC "
                f"{event['val_auc']:.4f}; conditions applied {event.get('aug_conditions', {})}; "
                f"{time.perf_counter() - t1:.0f}s, load {loads[-1]}"
            )

    log(
        f"fine-tuning {base} with {config} ({cfg.train.epochs} epochs, lr {cfg.train.base_lr:g},"
        f" conditions {list(cfg.aug.conditions)})"
    )
    t1 = time.perf_counter()
    result = train(
        cfg,
        TrainOptions(data_path=csv_path, output=run_dir, init_from=Path(base), device="cpu", num_workers=1),
        on_progress=progress,
    )
    train_s = time.perf_counter() - t1

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_NAME
    ship_checkpoint(result.last_checkpoint, weights)
    weights.with_suffix(".yaml").write_text(_resolved_yaml(cfg, config))
    log("evaluating the base model and the fine-tuned model on the test split")
    t2 = time.perf_counter()
    sidecar = Path(base).with_suffix(".yaml")  # else the fine-tune's (same architecture)
    before = evaluate_split(
        Path(base),
        csv_path,
        "test",
        conditions,
        log=log,
        cfg=sidecar if sidecar.is_file() else weights.with_suffix(".yaml"),
    )
    after = evaluate_split(weights, csv_path, "test", conditions, log=log)
    eval_s = time.perf_counter() - t2
    loads.append(_load_avg())
    info = {
        "command": _command(data_dir, base, out_dir, run_dir, config, epochs, seed, build_seed),
        "config": config.as_posix(),
        "seed": seed,
        "aug_conditions": [{"id": c, "p": p} for c, p in cfg.aug.conditions],
        "epochs": cfg.train.epochs,
        "base_lr": cfg.train.base_lr,
        "min_lr": cfg.train.min_lr,
        "warmup_epochs": cfg.train.warmup_epochs,
        "base": {"path": Path(base).as_posix(), "sha256": file_sha256(Path(base))},
        "data": {
            "dir": data_dir.as_posix(),
            "build_seed": int(manifest["seed"]),
            "photos": len(manifest["sources"]),
            "counts": manifest["counts"],
        },
        "shipped_epoch": result.history[-1]["epoch"] if result.history else None,
        "epoch_log": result.history,
        "train_s": train_s,
        "eval_s": eval_s,
        "total_s": time.perf_counter() - t0,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "load_avg_1min": loads,  # at start, after each epoch, after the evaluation
        "seeds": seed_check(run_dir / CONDITIONS_FILE, csv_path, conditions),
        "sha256": file_sha256(weights),
        "before": before,
        "after": after,
    }
    (out_dir / "eval.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    (out_dir / "MODEL_CARD.md").write_text(card(info))
    log(f"done in {info['total_s'] / 60:.1f} min: {weights}")
    return info


def _command(
    data_dir: Path,
    base: Path,
    out_dir: Path,
    run_dir: Path,
    config: Path,
    epochs: int | None,
    seed: int,
    build_seed: int,
) -> str:
    args = [
        "--data",
        data_dir.as_posix(),
        "--base",
        Path(base).as_posix(),
        "--output",
        out_dir.as_posix(),
        "--run-dir",
        run_dir.as_posix(),
        "--config",
        config.as_posix(),
        "--seed",
        str(seed),
        "--build-seed",
        str(build_seed),
    ]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    return "python -m spai.demo finetune " + shlex.join(args)


def _num(m: dict[str, Any], key: str, fmt: str = ".4f") -> str:
    v = m.get(key)
    return "n/a" if not isinstance(v, (int, float)) or v != v else format(v, fmt)


def delta(before: dict[str, Any], after: dict[str, Any], key: str = "auc") -> float | None:
    """after - before of one metric, None when either side has none."""
    a, b = after.get(key), before.get(key)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or a != a or b != b:
        return None
    return a - b


def _target_lines(info: dict[str, Any]) -> str:
    out = []
    for cid, (words, bound) in FINETUNE_TARGETS.items():
        d = delta(info["before"].get(cid, {}), info["after"].get(cid, {}))
        if d is None:
            out.append(f"- `{cid}`: AUC {words} {abs(bound):.2f}: not measured")
            continue
        met = d >= bound
        ceiling = ""
        b = info["before"][cid]["auc"]
        if bound > 0 and b + bound > 1.0:
            ceiling = f" (unreachable: the base model's {b:.4f} leaves {1.0 - b:.4f} below AUC 1)"
        out.append(f"- `{cid}`: AUC {words} {abs(bound):.2f}: {d:+.4f} ({'met' if met else 'not met'}){ceiling}")
    return "\n".join(out)


def card(info: dict[str, Any]) -> str:
    """The fine-tuned model's MODEL_CARD.md from its eval.json record."""
    rows = []
    for cid, b in info["before"].items():
        a = info["after"].get(cid, {})
        if "auc" not in b or "auc" not in a:
            err = b.get("error") or a.get("error") or "not measured"
            rows.append(f"| `{cid}` | n/a ({err}) | | | | | |")
            continue
        d, dap = delta(b, a), delta(b, a, "ap")
        rows.append(
            f"| `{cid}` | {_num(b, 'auc')} | {_num(a, 'auc')} | "
            f"{'n/a' if d is None else f'{d:+.4f}'} | {_num(b, 'ap')} | {_num(a, 'ap')} | "
            f"{'n/a' if dap is None else f'{dap:+.4f}'} |"
        )
    conds = ", ".join(f"`{c['id']}` p={c['p']:g}" for c in info["aug_conditions"])
    s = info["seeds"]
    counts = info["data"]["counts"]
    loads = [x for x in info["load_avg_1min"] if x == x]
    applied: dict[str, int] = {}
    for ev in info["epoch_log"]:
        for cid, n in (ev.get("aug_conditions") or {}).items():
            applied[cid] = applied.get(cid, 0) + n
    epochs = "\n".join(
        f"| {ev['epoch']} | {ev['val_loss']:.4f} | {ev['val_auc']:.4f} | "
        + ", ".join(f"{c} {n}" for c, n in (ev.get("aug_conditions") or {}).items())
        + " |"
        for ev in info["epoch_log"]
    )
    return f"""# SPAI demo model, fine-tuned for robustness — a demo, not a benchmark

The shipped demo model (`{info["base"]["path"]}`, sha256 `{info["base"]["sha256"][:16]}…`, see
`weights/demo/MODEL_CARD.md`) trained further on the same demo set with robustness conditions
as training augmentation (issue 17.3). Same architecture and input pipeline; only the weights
differ. Like the base model, it has never seen a real generative model's output.

## Fine-tuning

- command: `{info["command"]}`
- config: `{info["config"]}` (`spai_demo_robust.yaml` here is the same config with its BASE
  resolved), seed {info["seed"]}: `AUG.CONDITIONS` {conds}: each condition is applied to a
  training image with its probability, in this order, before the image's 4 views are cut, by
  `robustness.apply.apply_condition` (the code that makes the test variants); {info["epochs"]}
  epochs, learning rate {info["base_lr"]:g} (cosine to {info["min_lr"]:g}, {info["warmup_epochs"]}
  warm-up epochs), everything else as `configs/demo.yaml`.
- data: the demo set `{info["data"]["dir"]}` (`python -m spai.demo build --seed
  {info["data"]["build_seed"]}`, {info["data"]["photos"]} photos), its train split
  ({counts["train"]["real"]} real + {counts["train"]["fake"]} fake) for training, its val split for the
  per-epoch loss; the test split ({counts["test"]["real"]} real + {counts["test"]["fake"]} fake, photos
  in no other split) only for the table below.
- shipped: the last epoch ({info["shipped_epoch"]}); no epoch is chosen by a test measurement.
- conditions applied in training: {", ".join(f"{c} {n}" for c, n in applied.items()) or "none"}
  (over all epochs; every application is logged with its seed in the run's `aug_conditions.jsonl`).
- time: fine-tuning {info["train_s"] / 60:.1f} min, evaluating both models {info["eval_s"] / 60:.1f} min,
  whole command {info["total_s"] / 60:.1f} min on {info["machine"]} ({info["cpus"]} CPUs, {info["threads"]}
  torch threads), with the machine shared: 1-minute load average {min(loads, default=float("nan")):.1f} to
  {max(loads, default=float("nan")):.1f} during the run (at the start, after each epoch, at the end).
  The project asks for training under 60 minutes on 2 cores: {info["train_s"] / 60:.1f} min here
  ({"met" if info["train_s"] < 3600 else "not met"}).

| epoch | val loss | val AUC | conditions applied |
|---|---|---|---|
{epochs}

## Held-out evaluation: condition seeds disjoint from training

A test variant's condition seed is `robustness.registry.seed_for(image, condition)` (63 bits);
a training application's is `spai.augment.condition_seed(run seed, epoch, image, condition)`,
the same hash of ("train", run seed, epoch, image) with bit 63 set, so no training draw can
repeat a test variant. Checked on this run's seeds: {s["training_applications_seeds"]} training
seeds ({s["training_seeds_with_bit_63"]} with bit 63 set), {s["evaluation_seeds"]} test-variant
seeds ({s["evaluation_seeds_below_2_63"]} below 2^63), **{s["shared_seeds"]} shared**; the
{s["training_images_conditioned"]} conditioned training images include {s["test_images_among_them"]}
test images.

## Before and after, per condition (demo test split, `spai.demo.reproduce.evaluate_split`)

| condition | AUC before | AUC after | ΔAUC | AP before | AP after | ΔAP |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Targets of issue 17.3 (reported as measured):

{_target_lines(info)}

Where a loss on `original` comes from: not from the fine-tuning path itself. Fine-tuning from a
base at learning rate 0, with a condition applied to every training image and dropout on, leaves
every weight bit-identical and the first epoch's validation loss equal to the base's
(`tests/test_training.py::test_fine_tuning_at_lr_zero_continues_exactly_from_the_base`). What
moves the model is fitting the conditioned images. A likely reason: this small model (trained
from scratch on {counts["train"]["real"]} real/fake pairs) separates the demo fakes by their
decoder's high-frequency fingerprint, which the filtered and captioned copies carry less of, so
fitting them pulls it towards weaker cues. The recipe is meant for the real SPAI, with its
pretrained backbone and far more data; on this demo it shows the workflow, not a fix.

In the dashboard: `python -m robustness.study run examples/demo-robust-study.yaml` scores both
models on the demo test split under these conditions; the Compare page then shows them side by
side (pick both models; "Paired deltas between two models" gives each delta with a paired
bootstrap interval).

## Files

- `{WEIGHTS_NAME}`: `{{"model": state_dict, "epoch", "step", "config"}}` (loads with
  `torch.load(weights_only=True)`; sha256 `{info["sha256"]}`)
- `spai_demo_robust.yaml`: the config the detector builds the model from (sidecar).
- `eval.json`: everything above as data (per-condition metrics before and after, epochs, seeds).

Licence: as the base model's (`weights/demo/MODEL_CARD.md`).
"""
