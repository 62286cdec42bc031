"""The float32 matrix-multiply floor: a crop's GEMM FLOPs counted from the model config, and the
GEMM throughput of this machine measured in the calling process (same threads, same moment).

    flops = crop_flops(config)            # FLOPs of one crop (three spectral views)
    rate = gemm_rate(config, crops=16)    # FLOP/s of the model's own GEMM shapes, best of them
    floor_s = flops["total"] / rate       # a crop can not go faster than this in float32
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from spai.config import Config

VIEWS = 3  # original, low-pass and high-pass view of each crop go through the ViT


def crop_flops(config: Config) -> dict[str, float]:
    """GEMM FLOPs (2 per multiply-add) of one crop, by part; ``total`` is their sum.

    Counted: the patch embedding, every block up to the last selected layer (qkv, attention
    scores and weighted sum, output projection, MLP), and the per-layer projectors on the
    patch tokens, each for the three views. The rest (spectral split, original-image branch,
    patch attention, head) is under 0.1% of it in GEMM terms and left out.
    """
    v = config.model.vit
    size = config.data.img_size
    tokens = (size // v.patch_size) ** 2
    t1 = tokens + 1  # with the class token
    d = v.embed_dim
    hidden = int(d * v.mlp_ratio)
    blocks = max(v.intermediate_layers) + 1
    p = v.projection_dim
    parts = {
        "patch embedding": 2 * tokens * d * v.in_chans * v.patch_size**2,
        "qkv + output projection": blocks * 2 * t1 * d * 4 * d,
        "attention (QK^T, AV)": blocks * 2 * 2 * t1 * t1 * d,
        "MLP": blocks * 2 * 2 * t1 * d * hidden,
        "layer projectors": len(v.intermediate_layers) * 2 * tokens * (d * p + (v.projection_layers - 1) * p * p),
    }
    out = {k: float(VIEWS * f) for k, f in parts.items()}
    out["total"] = sum(out.values())
    return out


def gemm_shapes(config: Config, crops: int) -> list[tuple[int, int, int]]:
    """(rows, in, out) of the model's Linear layers for a batch of ``crops`` crops."""
    v = config.model.vit
    d, hidden, p = v.embed_dim, int(v.embed_dim * v.mlp_ratio), v.projection_dim
    t1 = (config.data.img_size // v.patch_size) ** 2 + 1
    m = VIEWS * crops * t1
    return [(m, d, 3 * d), (m, d, d), (m, d, hidden), (m, hidden, d), (m, d, p), (m, p, p)]


def gemm_rate(config: Config, crops: int = 4, repeats: int = 3) -> dict[str, float]:
    """Best float32 FLOP/s over the model's Linear shapes (best of ``repeats`` each)."""
    best: dict[str, float] = {}
    with torch.inference_mode():
        for m, k, n in gemm_shapes(config, crops):
            x = torch.randn(m, k)
            w = torch.randn(n, k)
            b = torch.randn(n)
            F.linear(x, w, b)  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                F.linear(x, w, b)
                times.append(time.perf_counter() - t0)
            best[f"{m}x{k}x{n}"] = 2.0 * m * k * n / min(times)
    best["best"] = max(best.values())
    return best
