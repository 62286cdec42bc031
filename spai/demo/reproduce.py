"""One-command rebuild of the shipped demo model: data set -> training -> evaluation -> card.

    python -m spai.demo reproduce            # writes weights/demo/{spai_demo.pth,.yaml,MODEL_CARD.md}

Training goes through the public CLI (``python -m spai train``) with the arguments recorded in
the model card. The test AUC is measured on the demo set's test split (photos never seen in
training), as is, and under the main robustness conditions when ``robustness`` is importable.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import shlex
import shutil
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustness.metrics import acc_at, ap, auc

__all__ = [
    "MAIN_CONDITIONS",
    "all_conditions",
    "calibrate",
    "evaluate_other_build",
    "evaluate_split",
    "reevaluate",
    "reproduce",
    "ship_checkpoint",
]

DEMO_CONFIG = Path("configs/demo.yaml")
TARGET_AUC = 0.95  # issue 6: test AUC the shipped demo model must reach (reported, not asserted)
MAIN_CONDITIONS = (
    "original",
    "jpeg/q90",
    "jpeg/q75",
    "jpeg/q50",
    "webp/q75",
    "resize/x0.5",
    "resize/x0.75",
    "resize/x1.5",
    "blur/s1.0",
    "noise/s5",
    "crop/center-0.8",
    "social/1080-q80",
    "instagram-filter",
    "meme",
    "screenshot",
    "resample/x0.5-x2-lanczos",
)


def all_conditions() -> tuple[str, ...]:
    """MAIN_CONDITIONS first, then every other condition registered in `robustness`."""
    try:
        from robustness.registry import list_conditions
    except ImportError:
        return MAIN_CONDITIONS
    return MAIN_CONDITIONS + tuple(c.id for c in list_conditions() if c.id not in MAIN_CONDITIONS)


def ship_checkpoint(src: Path, dst: Path) -> None:
    """Copy a training checkpoint without optimizer state: {model, epoch, step, config}."""
    ck = torch.load(src, map_location="cpu", weights_only=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: ck[k] for k in ("model", "epoch", "step", "config") if k in ck}, dst)


def _metrics(y: Sequence[int], p: Sequence[float]) -> dict[str, float]:
    y_arr, p_arr = np.asarray(y), np.asarray(p)
    both = 0 < y_arr.sum() < len(y_arr)
    return {
        "n": int(len(y_arr)),
        "auc": auc(y_arr, p_arr) if both else math.nan,
        "ap": ap(y_arr, p_arr) if both else math.nan,
        "acc@0.5": acc_at(y_arr, p_arr) if len(y_arr) else math.nan,
    }


def evaluate_split(
    weights: Path,
    csv_path: Path,
    split: str = "test",
    conditions: Sequence[str] = ("original",),
    log: Callable[[str], None] = print,
    subset: Collection[str] | None = None,
    cfg: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """AUC/AP/ACC of `weights` on the `split` rows of `csv_path`, per robustness condition.

    Condition "original" is the image as stored; others go through
    ``robustness.apply.apply_condition(img, condition_id, image_key=<csv image path>)``.
    Unknown or unavailable conditions are reported with their error, never fatal. With
    `subset` (source photo ids), each condition also gets ``"subset"``: the metrics on the rows
    of those photos only (same scores). `cfg`: the model's config when it has no sidecar.
    """
    from spai.detector import Detector
    from core.imageio import open_rgb

    det = Detector.load(weights, cfg, device="cpu")
    with csv_path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    out: dict[str, dict[str, Any]] = {}
    for cid in conditions:
        t0 = time.perf_counter()
        y, p, src, errors = [], [], [], 0
        for r in rows:
            img = open_rgb(csv_path.parent / r["image"])
            try:
                if cid != "original":
                    from robustness.apply import apply_condition

                    img, _ = apply_condition(img, cid, r["image"])
            except (ImportError, KeyError, ValueError, OSError) as exc:
                out[cid] = {"error": f"{type(exc).__name__}: {exc}"}
                break
            pred = det.score_one(img, name=r["image"])
            if not pred.ok:
                errors += 1
                continue
            y.append(int(r["class"]))
            p.append(float(pred.score))
            src.append(r.get("source", ""))
        else:
            out[cid] = _metrics(y, p) | {"errors": errors}
            if subset is not None:
                keep = [i for i, s in enumerate(src) if s in subset]
                out[cid]["subset"] = _metrics([y[i] for i in keep], [p[i] for i in keep])
        log(f"  {cid}: {out[cid]} ({time.perf_counter() - t0:.0f}s)")
    return out


def calibrate(
    data_dir: Path = Path("data/demo"),
    out_dir: Path = Path("weights/demo"),
    split: str = "test",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Any:
    """Measure the shipped model's verdict thresholds on the `split` reals of the demo set and
    write them to ``out_dir/calibration.json`` (``spai.calibration``).

    The reals are read from `data_dir` when a built set is there, else cut from the installed
    photos exactly as ``python -m spai.demo build --seed <seed>`` cuts them (the reals do not
    depend on the autoencoder, so it is not trained).
    """
    from spai import calibration
    from spai.checkpoint import file_sha256
    from spai.demo.build import BuildConfig, real_crops
    from spai.detector import Detector

    weights = out_dir / "spai_demo.pth"
    csv_path = data_dir / "demo.csv"
    if csv_path.is_file():
        with csv_path.open(newline="") as f:
            names = [r["image"] for r in csv.DictReader(f) if r["split"] == split and r["class"] == "0"]
        images = [(name, data_dir / name) for name in names]
        where = f"{data_dir}"
    else:
        images = real_crops(BuildConfig(seed=seed), split)
        where = f"cut from the installed photos as `python -m spai.demo build --seed {seed}` does"
    log(f"scoring {len(images)} {split} reals ({where})")
    det = Detector.load(weights, device="cpu")
    scores = []
    for name, image in images:
        pred = det.score_one(image, name=name)
        if not pred.ok:
            raise ValueError(f"{name}: {pred.error}")
        scores.append(pred.score)
    cal = calibration.measure(
        scores,
        sha256=file_sha256(weights),
        source=f"the {len(scores)} real images of the demo set's {split} split (photos never seen in training)",
        command=f"python -m spai.demo calibrate --output {out_dir}",
    )
    calibration.write(cal, out_dir / calibration.CALIBRATION_FILE)
    log(
        f"calibration from {cal.n_real} reals: "
        + ", ".join(f"{f:g}: {'n/a' if t is None else f'{t:.4f}'}" for f, t in cal.thresholds.items())
    )
    return cal


def _fmt(m: dict[str, Any], key: str, digits: int = 4) -> str:
    v = m.get(key)
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _headline(other: dict[str, Any], own: dict[str, Any]) -> str:
    """One sentence: the unmodified images' AUC on another build against the model's own set."""
    m, o = other.get("original", {}), own.get("original", {})
    if "auc" not in m or "auc" not in o:
        return ""
    return (
        f"\nOn the unmodified images: AUC **{_fmt(m, 'auc', 3)}** ({_fmt(m['subset'], 'auc', 3)} on"
        f" the photos not trained on), against {_fmt(o, 'auc', 3)} on its own set's test split."
    )


def _other_builds(info: dict[str, Any]) -> str:
    """The card's section on builds with other seeds ("" when none was measured)."""
    builds = info.get("other_builds") or {}
    if not builds:
        return ""
    out = [
        f"""
## Other builds of the demo set (another seed: another autoencoder, another split)

The results above are on the test split of the set the model was trained with (seed
{info["seed"]}): its fakes come from the autoencoder it learned to detect. A build with another seed
trains another autoencoder (same architecture, other initialisation and crops), so its fakes are
new to the model, and splits the photos differently. Measured by `python -m spai.demo
evaluate-build --data <that build>`, which adds the section below.
"""
    ]
    head = (
        "| condition | AUC | AP | ACC@0.5 | images | AUC, photos not trained on | images |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    for seed, b in sorted(builds.items(), key=lambda kv: int(kv[0])):
        c, unseen = b["counts"]["test"], b["test_photos_not_trained_on"]
        rows = "\n".join(
            f"| `{cid}` | {_fmt(m, 'auc')} | {_fmt(m, 'ap')} | {_fmt(m, 'acc@0.5', 3)} | {m['n']} "
            f"| {_fmt(m['subset'], 'auc')} | {m['subset']['n']} |"
            if "auc" in m
            else f"| `{cid}` | n/a ({m['error']}) | | | | | |"
            for cid, m in b["test"].items()
        )
        out.append(f"""
### `{b["command"]}`

{b["photos"]} photos; autoencoder final L1 {b["autoencoder_final_l1"]}. Test split: {c["real"]} real + {c["fake"]} fake
images from {len(b["test_photos"])} photos. {len(b["test_photos"]) - len(unseen)} of them were in the model's own training split (it
trained on other crops of them, never on these fakes); {len(unseen)} were not
({", ".join(f"`{u}`" for u in unseen) or "none"}): the last two columns are measured on those
photos only.
{_headline(b["test"], info["test"])}

{head}{rows}
""")
    return "".join(out)


def _card(info: dict[str, Any]) -> str:
    def _rows(items: Sequence[tuple[str, dict[str, Any]]]) -> str:
        return "\n".join(
            f"| `{cid}` | {m['auc']:.4f} | {m['ap']:.4f} | {m['acc@0.5']:.3f} | {m['n']} |"
            if "auc" in m
            else f"| `{cid}` | n/a ({m['error']}) | | | |"
            for cid, m in items
        )

    res = info["test"]
    head = "| condition | AUC | AP | ACC@0.5 | images |\n|---|---|---|---|---|\n"
    rows = head + _rows([(c, m) for c, m in res.items() if c in MAIN_CONDITIONS])
    others = [(c, m) for c, m in res.items() if c not in MAIN_CONDITIONS]
    if others:
        rows += (
            "\n\nEvery other condition registered in `robustness` (the Instagram filters one by"
            " one, with and without the re-encode, and the other variants):\n\n" + head + _rows(others)
        )
    counts = info["data"]["counts"]
    return (
        f"""# SPAI demo model — a demo, not a benchmark

A small SPAI (the official architecture and pipeline with reduced widths: ViT embed 96, depth 4,
3 heads, all 4 layers used, projection 64, patch attention 4 heads x 32; {info["params_m"]:.2f} M
parameters) trained **from scratch** by this project on its offline demo data set. It exists so
the tools run end to end without the official weights. It has never seen a real generative
model's output: do not use its scores to judge real images.

## Data

`python -m spai.demo build --seed {info["seed"]}`: crops of {info["data"]["photos"]} real photographs
that come with the clone (scikit-learn and scikit-image sample photos; Debian `mate-backgrounds`
and `plasma-workspace-wallpapers` photos shipped in `spai/demo/photos` with their licences), and their reconstructions by a
small convolutional autoencoder trained by the build (the fakes), split by source photo (no photo
in two splits).

| split | real | fake |
|---|---|---|
"""
        + "\n".join(f"| {s} | {c['real']} | {c['fake']} |" for s, c in counts.items())
        + f"""

## Training

- command: `{info["command"]}`
- config: `spai_demo.yaml` (copy of `configs/demo.yaml`), seed {info["seed"]}; the official recipe's
  structure (4 augmented views side by side, BCE on the logit, AdamW without decay on biases and
  norms, warm-up + cosine per step), backbone trained from scratch (no MFM weights), with these
  demo-specific changes, each measured to matter in this CPU budget: native-resolution random
  224 crops with flips only (no resize, rotation, blur, noise or JPEG, which wash out the
  fakes' decoder fingerprint), learning rate 1e-4 (5e-4 stalled at chance for 3 epochs and 3e-4
  learned more slowly over 10 epochs), batch 8 (twice the optimiser steps of batch 16 for the
  same time; batch 16 for 20 epochs reached a test AUC of 0.909), dropout 0.1, no drop path.
- best epoch (lowest validation loss): {info["best_epoch"]} of {info["epochs"]}; validation AUC
  there: {info["val_auc"]:.4f}
- training time: {info["train_s"] / 60:.1f} min on {info["machine"]} (CPU, {info["threads"]} torch threads);
  building the data set: {info["build_s"] / 60:.1f} min ({info["build_note"]});
  build + training: {(info["build_s"] + info["train_s"]) / 60:.0f} min (the project asks for under an hour)
- target: the project asks for a test AUC of at least {TARGET_AUC} on the demo test split; this
  model reaches **{info["test"]["original"]["auc"]:.3f}**
  ({"target met" if info["test"]["original"]["auc"] >= TARGET_AUC else "below the target"})
- whole pipeline: `python -m spai.demo reproduce` (rebuilds data, trains, evaluates, writes this card);
  `python -m spai.demo evaluate` re-measures the shipped model (e.g. after adding a condition)

## Test split results (demo set, measured by `spai.demo.reproduce.evaluate_split`)

{rows}

Conditions are the ids of `robustness` (applied per image, seeded by the image path).
{_other_builds(info)}
## Files

- `spai_demo.pth`: `{{"model": state_dict, "epoch", "step", "config"}}` (loads with
  `torch.load(weights_only=True)`; sha256 `{info["sha256"]}`)
- `spai_demo.yaml`: the config the detector builds the model from.
- `calibration.json`: the verdict thresholds at the Score page's false-positive rates, measured
  on the test split's real images (`python -m spai.demo calibrate`; rates the test reals cannot
  measure, below 1 / their number, are recorded as null).

Licence: the weights are a product of this repository's code and of the photos listed in the
data set's `manifest.json` (CC-BY 2.0, CC0/public domain, GPL-2+ and LGPL-3 sources).
"""
    )


def reproduce(
    data_dir: Path = Path("data/demo"),
    out_dir: Path = Path("weights/demo"),
    run_dir: Path = Path("output/demo"),
    seed: int = 0,
    epochs: int | None = None,
    skip_build: bool = False,
    conditions: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    config: Path = DEMO_CONFIG,
) -> dict[str, Any]:
    """Build the demo set, train the demo model with the CLI, evaluate it and write the card.

    `config` is the training config (copied next to the weights as ``spai_demo.yaml``);
    `conditions` default to `all_conditions()`.
    """
    from spai.__main__ import cli
    from spai.checkpoint import file_sha256
    from spai.config import load_config
    from spai.demo.build import BuildConfig, build_demo_set
    from spai.model import build_model

    t0 = time.perf_counter()
    csv_path = data_dir / "demo.csv"
    reuse = skip_build and csv_path.is_file()
    if not reuse:
        build_demo_set(BuildConfig(output=data_dir, seed=seed), log=log)
    build_s = time.perf_counter() - t0
    manifest = json.loads((data_dir / "manifest.json").read_text())
    build_note = "measured in this run"
    if reuse:  # report the time the reused set's own build recorded
        build_s = float(manifest.get("timing_s", {}).get("total", 0.0))
        build_note = "as recorded in the reused set's manifest.json"

    args = [
        "train",
        "--cfg",
        str(config),
        "--data-path",
        str(csv_path),
        "--output",
        str(run_dir.parent),
        "--tag",
        run_dir.name,
        "--data-workers",
        "1",
        "--opt",
        "SEED",
        str(seed),
    ]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    if run_dir.exists():
        shutil.rmtree(run_dir)
    log("python -m spai " + shlex.join(args))
    t1 = time.perf_counter()
    cli.main(args=args, standalone_mode=False)
    train_s = time.perf_counter() - t1
    epochs_log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epoch_events = [e for e in epochs_log if e["type"] == "epoch"]
    best = min(epoch_events, key=lambda e: e["val_loss"])
    best_ckpt = run_dir / f"ckpt_epoch_{best['epoch']}.pth"

    weights = out_dir / "spai_demo.pth"
    ship_checkpoint(best_ckpt, weights)
    shutil.copyfile(config, out_dir / "spai_demo.yaml")
    log("evaluating on the test split")
    test = evaluate_split(weights, csv_path, "test", conditions or all_conditions(), log=log)
    cfg = load_config(config)
    info = {
        "seed": seed,
        "command": "python -m spai " + shlex.join(args),
        "data": {
            "photos": len(manifest["sources"]),
            "counts": manifest["counts"],
            "train_photos": manifest["autoencoder"]["train_photos"],
        },
        "params_m": sum(p.numel() for p in build_model(cfg).parameters()) / 1e6,
        "best_epoch": best["epoch"],
        "epochs": len(epoch_events),
        "val_auc": best["val_auc"],
        "train_s": train_s,
        "build_s": build_s,
        "build_note": build_note,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "sha256": file_sha256(weights),
        "test": test,
        "epoch_log": epoch_events,
    }
    _write_card(out_dir, info)
    calibrate(data_dir, out_dir, seed=seed, log=log)
    log(f"done in {(time.perf_counter() - t0) / 60:.1f} min: {weights}")
    return info


def _write_card(out_dir: Path, info: dict[str, Any]) -> None:
    (out_dir / "MODEL_CARD.md").write_text(_card(info))
    (out_dir / "eval.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def _shipped_info(out_dir: Path) -> dict[str, Any]:
    """The shipped model's ``eval.json``, checked to describe the weights next to it."""
    from spai.checkpoint import file_sha256

    info = json.loads((out_dir / "eval.json").read_text())
    weights = out_dir / "spai_demo.pth"
    if file_sha256(weights) != info["sha256"]:
        raise ValueError(
            f"{weights} is not the model {out_dir / 'eval.json'} describes "
            "(sha256 differs); run `python -m spai.demo reproduce` instead"
        )
    return info


def _demo_csv(data_dir: Path, what: str = "python -m spai.demo build") -> Path:
    csv_path = data_dir / "demo.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"no demo set at {data_dir}: run `{what}` first")
    return csv_path


def reevaluate(
    data_dir: Path = Path("data/demo"),
    out_dir: Path = Path("weights/demo"),
    conditions: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Re-measure the shipped model in `out_dir` on the test split and rewrite its card.

    The training facts come from the existing ``eval.json``; only the test results change.
    The weights must be the ones that file describes (same sha256).
    """
    info = _shipped_info(out_dir)
    csv_path = _demo_csv(data_dir)
    info["test"] = evaluate_split(out_dir / "spai_demo.pth", csv_path, "test", conditions or all_conditions(), log=log)
    _write_card(out_dir, info)
    return info


def evaluate_other_build(
    data_dir: Path,
    out_dir: Path = Path("weights/demo"),
    conditions: Sequence[str] = MAIN_CONDITIONS,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure the shipped model on the test split of a demo set built with another seed (another
    autoencoder, another split) in `data_dir`; add it to the card as ``other_builds[<seed>]``.

    Another seed splits the photos differently, so some of that test split's photos were in the
    model's own training split (other crops of them); the metrics are also given on the photos
    it never trained on (``subset``).
    """
    from spai.demo.build import BuildConfig, source_splits

    info = _shipped_info(out_dir)
    csv_path = _demo_csv(data_dir, "python -m spai.demo build --seed <another seed> --output <dir>")
    manifest = json.loads((data_dir / "manifest.json").read_text())
    seed = int(manifest["seed"])
    if seed == info["seed"]:
        raise ValueError(
            f"{data_dir} was built with seed {seed}, the model's own set; build another seed for this measurement"
        )
    test_photos = sorted(s["id"] for s in manifest["sources"] if s["split"] == "test")
    if "train_photos" not in info["data"]:  # cards written before it was recorded
        info["data"]["train_photos"] = sorted(
            sid for sid, split in source_splits(BuildConfig(seed=info["seed"])).items() if split == "train"
        )
    trained = set(info["data"]["train_photos"])
    unseen = [sid for sid in test_photos if sid not in trained]
    log(
        f"test split of the seed-{seed} build: {len(test_photos)} photos, {len(unseen)} of them"
        f" not in the model's training split"
    )
    test = evaluate_split(out_dir / "spai_demo.pth", csv_path, "test", conditions, log=log, subset=set(unseen))
    info.setdefault("other_builds", {})[str(seed)] = {
        "seed": seed,
        "command": f"python -m spai.demo build --seed {seed}",
        "photos": len(manifest["sources"]),
        "counts": manifest["counts"],
        "autoencoder_final_l1": manifest["autoencoder"]["final_l1"],
        "test_photos": test_photos,
        "test_photos_not_trained_on": unseen,
        "test": test,
    }
    _write_card(out_dir, info)
    return info
