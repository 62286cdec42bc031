"""Training augmentations of the SPAI recipe (spec section 7), in numpy/PIL/OpenCV.

One view: RandomResizedCrop 224 (scale 0.2-1) -> horizontal flip -> vertical flip -> rotate
within +-90 degrees and crop away the border, then resize back to 224 -> Gaussian blur ->
Gaussian noise -> JPEG re-encode. Each step fires with its probability from ``AugConfig``.
Arbitrary-resolution training concatenates ``augmented_views`` independent views of one image
side by side: a 3 x 224 x (224 * views) tensor in [0, 1].

All randomness comes from the ``np.random.Generator`` passed in, so a seeded caller gets the
same views every run.

``AUG.CONDITIONS`` adds registered robustness conditions (meme, screenshot, Instagram filter,
...) before the views, each with its probability, through the very code that makes the test
variants (``robustness.apply.apply_condition``). Their seeds are kept apart from evaluation's:
a test variant's seed is ``seed_for(image key, condition id)``, below 2**63; a training
application's is ``seed_for("train", run seed, epoch, image) | 2**63``, so the two sets of
seeds never meet.
"""

from __future__ import annotations

import io
import math
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from spai.config import AugConfig, Config
from core.imageio import pad_to_min_side

__all__ = [
    "TRAIN_SEED_BIT",
    "apply_conditions",
    "condition_seed",
    "random_resized_crop",
    "rotate_crop_border",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg",
    "augment_view",
    "train_views",
    "to_tensor",
]

RRC_RATIO = (3 / 4, 4 / 3)  # aspect-ratio range of RandomResizedCrop (library default)
RRC_ATTEMPTS = 10
BLUR_KERNELS = (3, 5, 7, 9)  # odd kernel sides drawn for GaussianBlur (blur_limit 3..9)
BLUR_SIGMA = (0.01, 0.5)
NOISE_VAR = (10.0, 50.0)  # GaussNoise default variance range, in 0..255 pixel units
TRAIN_SEED_BIT = 1 << 63  # set in every training condition seed; evaluation seeds are < 2**63

Array = np.ndarray  # H x W x 3 uint8


def random_resized_crop(img: Array, rng: np.random.Generator, size: int, scale: tuple[float, float]) -> Array:
    """Crop a random area fraction in `scale` with a random aspect ratio, resize to size x size."""
    h, w = img.shape[:2]
    area = h * w
    for _ in range(RRC_ATTEMPTS):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])))
        cw = int(round(math.sqrt(target * ratio)))
        ch = int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(h - ch + 1))
            left = int(rng.integers(w - cw + 1))
            break
    else:  # fall back to the central crop with the ratio clamped to the range
        ratio = w / h
        if ratio < RRC_RATIO[0]:
            cw, ch = w, int(round(w / RRC_RATIO[0]))
        elif ratio > RRC_RATIO[1]:
            ch, cw = h, int(round(h * RRC_RATIO[1]))
        else:
            cw, ch = w, h
        top, left = (h - ch) // 2, (w - cw) // 2
    crop = img[top : top + ch, left : left + cw]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


def _inscribed_size(w: int, h: int, angle_deg: float) -> tuple[int, int]:
    """Largest axis-aligned rectangle inside a w x h rectangle rotated by angle_deg."""
    a = math.radians(angle_deg)
    sin_a, cos_a = abs(math.sin(a)), abs(math.cos(a))
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * short_side  # half-constrained: two corners touch the longer side
        wr, hr = (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    else:  # fully constrained: the crop touches all four sides
        cos_2a = cos_a * cos_a - sin_a * sin_a
        wr = (w * cos_a - h * sin_a) / cos_2a
        hr = (h * cos_a - w * sin_a) / cos_2a
    return max(1, int(wr)), max(1, int(hr))


def rotate_crop_border(img: Array, angle_deg: float, size: int) -> Array:
    """Rotate about the centre, keep the largest border-free rectangle, resize to size x size."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    rotated = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    cw, ch = _inscribed_size(w, h, angle_deg)
    cw, ch = min(cw, w), min(ch, h)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = rotated[top : top + ch, left : left + cw]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


def gaussian_blur(img: Array, rng: np.random.Generator) -> Array:
    """Gaussian blur with an odd kernel in 3..9 and sigma in 0.01..0.5."""
    k = int(rng.choice(BLUR_KERNELS))
    sigma = float(rng.uniform(*BLUR_SIGMA))
    return cv2.GaussianBlur(img, (k, k), sigmaX=sigma, sigmaY=sigma)


def gaussian_noise(img: Array, rng: np.random.Generator) -> Array:
    """Add per-pixel, per-channel Gaussian noise with variance drawn from 10..50 (0..255 scale)."""
    std = math.sqrt(rng.uniform(*NOISE_VAR))
    noisy = img.astype(np.float32) + rng.normal(0.0, std, size=img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(img: Array, quality: int) -> Array:
    """Re-encode as JPEG at `quality` and decode again."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        return np.asarray(out.convert("RGB")).copy()


def random_crop(img: Array, rng: np.random.Generator, size: int) -> Array:
    """A size x size crop at native resolution (reflect-101 padding if a side is shorter)."""
    img = pad_to_min_side(img, size)
    h, w = img.shape[:2]
    top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
    return img[top : top + size, left : left + size]


def augment_view(
    img: Array, rng: np.random.Generator, aug: AugConfig, size: int = 224, scale: tuple[float, float] = (0.2, 1.0)
) -> Array:
    """One augmented size x size view of an H x W x 3 uint8 image.

    The official code applies RandomResizedCrop only when DATA.MIN_CROP_AREA differs from
    MAX_CROP_AREA; here equal values give a plain random crop at native resolution (no
    resampling).
    """
    if scale[0] == scale[1]:
        out = random_crop(img, rng, size)
    else:
        out = random_resized_crop(img, rng, size, scale)
    if rng.random() < aug.horizontal_flip_prob:
        out = out[:, ::-1]
    if rng.random() < aug.vertical_flip_prob:
        out = out[::-1]
    out = np.ascontiguousarray(out)
    if rng.random() < aug.rotation_prob:
        angle = float(rng.uniform(-aug.rotation_degrees, aug.rotation_degrees))
        out = rotate_crop_border(out, angle, size)
    if rng.random() < aug.gaussian_blur_prob:
        out = gaussian_blur(out, rng)
    if rng.random() < aug.gaussian_noise_prob:
        out = gaussian_noise(out, rng)
    if rng.random() < aug.jpeg_compression_prob:
        out = jpeg(out, int(rng.integers(aug.jpeg_min_quality, aug.jpeg_max_quality + 1)))
    assert out.shape == (size, size, 3), f"view has shape {out.shape}, expected {(size, size, 3)}"
    return out


def condition_seed(run_seed: int, epoch: int, image: str, condition_id: str) -> int:
    """The seed of a training application of ``condition_id``: 64 bits, top bit set, so it is
    never a test variant's seed (``robustness.registry.seed_for`` gives 63 bits)."""
    from robustness.registry import seed_for

    return seed_for(f"train\x00{run_seed}\x00{epoch}\x00{image}", condition_id) | TRAIN_SEED_BIT


def apply_conditions(
    img: Image.Image,
    rng: np.random.Generator,
    conditions: tuple[tuple[str, float], ...],
    *,
    run_seed: int,
    epoch: int,
    image: str,
) -> tuple[Image.Image, list[dict[str, Any]]]:
    """Apply each (condition id, p) with probability p, in order; returns the image and what
    was applied (condition id and seed of each), for the training log."""
    from robustness.apply import apply_condition

    applied = []
    for cid, p in conditions:
        if rng.random() < p:
            seed = condition_seed(run_seed, epoch, image, cid)
            img, _ = apply_condition(img, cid, image, seed=seed)
            applied.append({"condition": cid, "seed": seed})
    return img, applied


def to_tensor(img: Array) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)


def train_views(img: Image.Image | Array, rng: np.random.Generator, cfg: Config) -> torch.Tensor:
    """`cfg.data.augmented_views` independent views side by side: 3 x S x (S * views) in [0,1]."""
    arr = np.asarray(img.convert("RGB")) if isinstance(img, Image.Image) else img
    size = cfg.data.img_size
    scale = (cfg.data.min_crop_area, cfg.data.max_crop_area)
    views = [augment_view(arr, rng, cfg.aug, size, scale) for _ in range(cfg.data.augmented_views)]
    return to_tensor(np.concatenate(views, axis=1))  # 3 x S x (S * views)
