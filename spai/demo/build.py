"""Build the offline demo data set: real photo crops and their autoencoder reconstructions.

Steps: discover the installed real photos -> split them BY PHOTO into train/val/test (no photo
in two splits) -> train the autoencoder on random crops of the train-split photos -> cut crops
of several sizes from every photo -> save each crop (class 0) and its reconstruction (class 1)
in the crop's split -> write ``demo.csv`` (official ``image,class,split`` format plus
``source`` and ``pair`` columns), ``manifest.json`` and ``README.md``.

The images and the CSV are a deterministic function of the seed and the set of installed
photos (at a fixed torch thread count). This is a DEMO set, not a benchmark.
"""

from __future__ import annotations

import csv
import json
import platform
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spai.demo.generator import AutoencoderConfig, reconstruct, train_autoencoder
from spai.demo.sources import PhotoSource, discover_sources, load_photo

__all__ = ["BuildConfig", "BuildResult", "assign_splits", "build_demo_set", "real_crops", "source_splits"]

SPLITS = ("train", "val", "test")
CSV_NAME = "demo.csv"
CARD_PHOTOS = 33  # photos of the set the shipped demo model was trained and measured on (its card)
MANIFEST_NAME = "manifest.json"

DEFAULT_CROP_SIZES: tuple[tuple[int, int], ...] = (
    # (width, height), multiples of 8 so the autoencoder maps them to the same size
    (224, 224),
    (256, 256),
    (288, 224),
    (224, 288),
    (320, 320),
    (384, 256),
    (256, 384),
    (384, 384),
    (448, 320),
    (512, 384),
    (512, 512),
)


@dataclass(frozen=True)
class BuildConfig:
    """What to build and how much of it."""

    output: Path = Path("data/demo")
    seed: int = 0
    crop_sizes: tuple[tuple[int, int], ...] = DEFAULT_CROP_SIZES
    pixels_per_crop: int = 200_000  # one crop per this many photo pixels ...
    min_crops: int = 2  # ... but at least this many per photo
    max_crops: int = 10  # ... and at most this many
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, val, test (by crops)
    min_photos: int = CARD_PHOTOS  # refuse to build from fewer usable photos than this
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)


@dataclass(frozen=True)
class BuildResult:
    """Where the set was written and what it holds."""

    csv_path: Path
    manifest_path: Path
    counts: dict[str, dict[str, int]]  # split -> {"real": n, "fake": n}
    used: list[str]  # source ids
    skipped: dict[str, str]  # source id -> reason


def _n_crops(size: tuple[int, int], cfg: BuildConfig) -> int:
    return int(np.clip(size[0] * size[1] // cfg.pixels_per_crop, cfg.min_crops, cfg.max_crops))


def _source_rng(seed: int, source_id: str) -> np.random.Generator:
    """Per-photo generator: adding or removing other photos never changes this photo's crops."""
    return np.random.default_rng([seed, zlib.crc32(source_id.encode())])


def assign_splits(
    crops_per_source: dict[str, int], seed: int, fractions: Sequence[float] = (0.6, 0.2, 0.2)
) -> dict[str, str]:
    """Assign every source (photo or same-scene group) to exactly one split, balancing crop counts to `fractions`.

    Photos are visited in a seeded random order; each goes to the split furthest below its
    target share. With three or more photos every split gets at least one.
    """
    if len(fractions) != len(SPLITS) or min(fractions) <= 0:
        raise ValueError(f"fractions must be 3 positive numbers (train, val, test), got {fractions}")
    ids = sorted(crops_per_source)
    order = np.random.default_rng(seed).permutation(len(ids))
    totals = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}
    for i in order:
        sid = ids[int(i)]
        split = min(SPLITS, key=lambda s: (totals[s] / fractions[SPLITS.index(s)], SPLITS.index(s)))
        out[sid] = split
        totals[split] += crops_per_source[sid]
    return out


def _plan_crops(
    size: tuple[int, int], n: int, cfg: BuildConfig, rng: np.random.Generator
) -> list[tuple[int, int, int, int]]:
    """n crop boxes (left, top, width, height) that fit in `size`; sizes drawn from cfg."""
    fitting = [(w, h) for w, h in cfg.crop_sizes if w <= size[0] and h <= size[1]]
    boxes = []
    for _ in range(n):
        w, h = fitting[int(rng.integers(len(fitting)))]
        left = int(rng.integers(size[0] - w + 1))
        top = int(rng.integers(size[1] - h + 1))
        boxes.append((left, top, w, h))
    return boxes


def _readme(cfg: BuildConfig, counts: dict[str, dict[str, int]], used: int) -> str:
    rows = "\n".join(f"| {s} | {c['real']} | {c['fake']} |" for s, c in counts.items())
    return f"""# SPAI demo data set — a DEMO, not a benchmark

Built by `python -m spai.demo build --seed {cfg.seed}` from {used} real photographs that install
offline (see `manifest.json` for every source, its licence and its split).

- **real** (class 0): crops of several sizes of the photographs, saved losslessly as PNG.
- **fake** (class 1): the same crops reconstructed by a small convolutional autoencoder
  (learned transposed-convolution decoder) that the build trains on CPU on the train-split
  photos. Real and fake images are aligned pairs (`pair` column), in the same split.
- Split **by source photo**: no photograph contributes to two splits.

| split | real | fake |
|---|---|---|
{rows}

This set exists so the project can train and test a detector end to end without downloads.
It is tiny, its fakes come from one home-made generator, and its real photos are few: numbers
measured on it say nothing about detecting images from real generative models.
"""


@dataclass(frozen=True)
class _Plan:
    """Which photos are used, each photo's split and crop count (everything but the fakes)."""

    photos: dict[str, Image.Image]
    splits: dict[str, str]
    n_crops: dict[str, int]
    skipped: dict[str, str]
    by_id: dict[str, PhotoSource]


def _plan(cfg: BuildConfig, sources: Sequence[PhotoSource] | None) -> _Plan:
    sources = list(discover_sources() if sources is None else sources)
    photos: dict[str, Image.Image] = {}
    skipped: dict[str, str] = {}
    min_w = min(w for w, _ in cfg.crop_sizes)
    min_h = min(h for _, h in cfg.crop_sizes)
    for src in sources:
        try:
            img = load_photo(src)
        except (OSError, ValueError) as exc:
            skipped[src.id] = f"cannot decode {src.path}: {exc}"
            continue
        if img.width < max(min_w, cfg.autoencoder.crop) or img.height < max(min_h, cfg.autoencoder.crop):
            skipped[src.id] = f"{img.width}x{img.height} is smaller than the smallest crop"
            continue
        photos[src.id] = img
    by_id = {s.id: s for s in sources}
    if len({by_id[sid].split_key for sid in photos}) < len(SPLITS):
        raise ValueError(
            f"need photos of at least {len(SPLITS)} scenes for train/val/test, found {len(photos)}"
            f" (skipped: {skipped or 'none'})"
        )
    if len(photos) < cfg.min_photos:
        raise ValueError(
            f"found {len(photos)} usable photos, the demo set needs {cfg.min_photos} (the shipped"
            f" model card's set; skipped: {skipped or 'none'}): nothing was written. The photos"
            " come with the repository (spai/demo/photos, scikit-learn and scikit-image sample"
            " photos): use a complete clone and `pip install -r requirements.txt -e .`"
        )
    n_crops = {sid: _n_crops(img.size, cfg) for sid, img in photos.items()}
    per_group: dict[str, int] = {}
    for sid, n in n_crops.items():
        per_group[by_id[sid].split_key] = per_group.get(by_id[sid].split_key, 0) + n
    group_split = assign_splits(per_group, cfg.seed, cfg.split_fractions)
    splits = {sid: group_split[by_id[sid].split_key] for sid in photos}
    return _Plan(photos, splits, n_crops, skipped, by_id)


def _crops(plan: _Plan, cfg: BuildConfig, sid: str):
    """(name, pair, crop) of one photo's crops, in build order."""
    img = plan.photos[sid]
    boxes = _plan_crops(img.size, plan.n_crops[sid], cfg, _source_rng(cfg.seed, sid))
    stem = sid.replace("/", "_")
    for k, (left, top, w, h) in enumerate(boxes):
        yield f"{stem}_{k:02d}_{w}x{h}.png", f"{stem}_{k:02d}", img.crop((left, top, left + w, top + h))


def source_splits(cfg: BuildConfig, sources: Sequence[PhotoSource] | None = None) -> dict[str, str]:
    """Source photo id -> split, as ``build_demo_set`` assigns them (no autoencoder needed)."""
    return dict(_plan(cfg, sources).splits)


def real_crops(
    cfg: BuildConfig, split: str, sources: Sequence[PhotoSource] | None = None
) -> list[tuple[str, Image.Image]]:
    """The real images of one split, as ``build_demo_set`` writes them (relative path, image),
    without training the autoencoder: the reals do not depend on it."""
    plan = _plan(cfg, sources)
    return [
        ((Path(split) / "real" / name).as_posix(), crop)
        for sid in sorted(plan.photos)
        if plan.splits[sid] == split
        for name, _, crop in _crops(plan, cfg, sid)
    ]


def build_demo_set(
    cfg: BuildConfig,
    sources: Sequence[PhotoSource] | None = None,
    log: Callable[[str], None] = print,
) -> BuildResult:
    """Build the demo set into `cfg.output` (replacing a previous build there)."""
    start = time.perf_counter()
    plan = _plan(cfg, sources)
    photos, splits, n_crops, skipped, by_id = (plan.photos, plan.splits, plan.n_crops, plan.skipped, plan.by_id)
    log(f"using {len(photos)} photos ({len(skipped)} skipped); crops: {sum(n_crops.values())}")

    train_photos = [photos[sid] for sid in sorted(photos) if splits[sid] == "train"]
    ae_cfg = cfg.autoencoder
    log(f"training the autoencoder on {len(train_photos)} train photos, {ae_cfg.steps} steps")

    def _ae_progress(step: int, loss: float) -> None:
        if step % max(1, ae_cfg.steps // 10) == 0:
            log(f"  autoencoder step {step}/{ae_cfg.steps}  L1 {loss:.4f}")

    model, ae_stats = train_autoencoder(train_photos, ae_cfg, on_progress=_ae_progress)

    out = Path(cfg.output)
    if out.exists():
        shutil.rmtree(out)
    rows: list[dict[str, str | int]] = []
    per_source: list[dict[str, object]] = []
    for sid in sorted(photos):
        img, split = photos[sid], splits[sid]
        n_written = 0
        for name, pair, crop in _crops(plan, cfg, sid):
            for cls, kind, pic in ((0, "real", crop), (1, "fake", reconstruct(model, crop))):
                rel = Path(split) / kind / name
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                pic.save(out / rel, format="PNG")
                rows.append({"image": rel.as_posix(), "class": cls, "split": split, "source": sid, "pair": pair})
            n_written += 1
        src = by_id[sid]
        per_source.append(
            {
                "id": sid,
                "origin": src.origin,
                "licence": src.licence,
                "path": str(src.path),
                "size": list(img.size),
                "split": split,
                "group": src.split_key,
                "crops": n_written,
            }
        )

    counts = {s: {"real": 0, "fake": 0} for s in SPLITS}
    for r in rows:
        counts[str(r["split"])]["fake" if r["class"] == 1 else "real"] += 1
    csv_path = out / CSV_NAME
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "class", "split", "source", "pair"])
        writer.writeheader()
        writer.writerows(rows)
    manifest = {
        "kind": "SPAI demo data set (a demo, not a benchmark)",
        "seed": cfg.seed,
        "config": {k: v for k, v in asdict(cfg).items() if k != "output"},
        "counts": counts,
        "sources": per_source,
        "skipped": skipped,
        "autoencoder": {
            "final_l1": round(ae_stats["final_l1"], 5),
            "train_photos": [s for s in sorted(photos) if splits[s] == "train"],
        },
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "timing_s": {"autoencoder": round(ae_stats["seconds"], 1), "total": round(time.perf_counter() - start, 1)},
    }
    manifest_path = out / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "README.md").write_text(_readme(cfg, counts, len(photos)))
    log(f"wrote {len(rows)} images to {out} in {time.perf_counter() - start:.0f}s: {counts}")
    return BuildResult(csv_path, manifest_path, counts, sorted(photos), skipped)
