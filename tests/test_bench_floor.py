"""benchmarks/_floor.py: a crop's GEMM FLOPs counted from the config (the floor's numerator)
agree with the published cost of ViT-B/16 at 224 px, and the GEMM rate is measured."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from spai.config import load_config
from tiny_model import TINY_CFG

ROOT = Path(__file__).resolve().parents[1]


def _floor_module():
    spec = importlib.util.spec_from_file_location("bench_floor", ROOT / "benchmarks" / "_floor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vit_b_flops_match_the_published_figure() -> None:
    floor = _floor_module()
    flops = floor.crop_flops(load_config(ROOT / "configs" / "spai.yaml"))
    backbone = flops["total"] - flops["layer projectors"]
    # ViT-B/16 at 224 px: 17.6 G multiply-adds per image; SPAI runs it on three views
    assert abs(backbone / 3 / 2 - 17.56e9) / 17.56e9 < 0.005
    # 12 projectors of 768 -> 1024 -> 1024 on 196 patch tokens, three views
    assert flops["layer projectors"] == 3 * 12 * 2 * 196 * (768 * 1024 + 1024 * 1024)
    assert flops["total"] == sum(v for k, v in flops.items() if k != "total")


def test_gemm_rate_covers_the_model_shapes() -> None:
    floor = _floor_module()
    cfg = load_config(TINY_CFG)
    rates = floor.gemm_rate(cfg, crops=1, repeats=1)
    shapes = floor.gemm_shapes(cfg, crops=1)
    assert len(rates) == len(shapes) + 1 and rates["best"] == max(v for k, v in rates.items() if k != "best")
    assert all(v > 0 for v in rates.values())
    assert shapes[0] == (3 * 197, 96, 288)  # qkv of the tiny ViT: 3 views x 197 tokens
