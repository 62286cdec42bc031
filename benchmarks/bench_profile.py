"""Where a ViT-B/16 crop's time goes on the CPU, and what the ecosystem's compilers buy.

    python benchmarks/bench_profile.py [--crops 4] [--variants eager compile onnx] [--write docs/benchmarks.md]

In one process: the float32 GEMM rate of the model's own Linear shapes (the floor), then the
per-crop time of the feature extractor (the three spectral views through the ViT, the
per-layer projectors and statistics: ``MFViT.forward_with_stats``) on ``--crops`` crops of the
fixture photo, best of 2 after a warm-up, for each variant:

- ``eager``: this project's PyTorch code as shipped;
- ``compile``: ``torch.compile`` (inductor, CPU) of every ViT block and layer projector, with
  an on-disk cache (``TORCHINDUCTOR_CACHE_DIR``, default /tmp/spai-inductor-cache);
- ``compile-freezing``: the same with inductor's weight freezing (constant-folded, prepacked
  oneDNN weights);
- ``onnx``: the exported patch encoder in ONNX Runtime (graph optimisations on, the default
  ORT_ENABLE_ALL).

Each variant's patch vectors are compared with eager's on the ViT-B crops, and the same variant
of the tiny fixture model must give the fixture's official scores within 1e-5 to count. One
eager pass is profiled with torch.profiler; operator self-times are grouped into the table of
where the non-GEMM time goes.
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _floor import crop_flops, gemm_rate, gemm_shapes

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "spai-tiny"
SECTION = "## Where a crop's time goes (ViT-B/16, CPU profile)"
VARIANTS = ("eager", "compile", "compile-freezing", "onnx")

# operator -> group, by substring of the aten name (first match wins)
GROUPS = [
    ("GEMM (Linear layers)", ("addmm", "aten::mm", "aten::bmm", "aten::matmul", "linear")),
    ("attention (fused SDPA: QK^T, softmax, AV)", ("scaled_dot_product", "flash_attention")),
    ("patch embedding (conv)", ("convolution", "conv2d")),
    ("LayerNorm", ("layer_norm",)),
    ("GELU", ("gelu",)),
    ("similarity and token statistics", ("cosine", "std", "var", "vector_norm", "mean", "sum", "clamp_min")),
    ("spectral views (FFT, mask, clamp)", ("fft", "clamp")),
    ("copies and layout (cat, copy, clone)", ("copy", "clone", "cat", "contiguous", "stack", "index")),
    ("elementwise (add, mul, sub, div)", ("add", "mul", "sub", "div")),
]


def _group(name: str) -> str:
    for group, keys in GROUPS:
        if any(k in name for k in keys):
            return group
    return "other"


def fixture_crops(n: int) -> torch.Tensor:
    """``n`` 224x224 crops of the upscaled fixture photo, in [0, 1]."""
    img = Image.open(FIX / "images" / "07_photo_640x427.jpg").convert("RGB").resize((1280, 854))
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
    return torch.stack(
        [x[:, 224 * (i // 5) : 224 * (i // 5) + 224, 224 * (i % 5) : 224 * (i % 5) + 224] for i in range(n)]
    )


def _compile(model: torch.nn.Module, freezing: bool) -> None:
    import torch._dynamo
    import torch._inductor.config as inductor

    torch._dynamo.reset()  # no graph compiled for another variant is reused
    inductor.freezing = freezing
    for block in model.mfvit.vit.blocks:
        block.compile()
    for projector in model.mfvit.features_processor.patch_projector.projectors:
        projector.compile()


def make_forward(variant: str, model: torch.nn.Module, work: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """crops -> patch vectors (B x P) for the variant, on ``model``."""
    if variant == "eager":
        return lambda x: model.mfvit.forward_with_stats(x)[0]
    if variant in ("compile", "compile-freezing"):
        _compile(model, variant == "compile-freezing")
        return lambda x: model.mfvit.forward_with_stats(x)[0]
    if variant == "onnx":
        import onnxruntime as ort

        from spai.onnx_backend import ENCODER_FILE, export_onnx

        export_onnx(model, work)
        session = ort.InferenceSession(
            str(work / ENCODER_FILE), ort.SessionOptions(), providers=["CPUExecutionProvider"]
        )
        return lambda x: torch.from_numpy(session.run(None, {"crops": x.numpy()})[0])
    raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")


def fixture_parity(variant: str, work: Path) -> float:
    """Largest |score - official fixture score| of the variant on the tiny fixture model."""
    from spai.detector import Detector

    det = Detector.load(FIX / "spai_tiny_seed0.pth", FIX / "spai_tiny.yaml", "cpu")
    if variant == "onnx":
        det.use_onnx(work / "tiny-onnx")
    elif variant != "eager":
        _compile(det.model, variant == "compile-freezing")
    with open(FIX / "expected_scores.csv", newline="") as fh:
        expected = list(csv.DictReader(fh))
    preds = det.score([FIX / "images" / r["image"] for r in expected])
    return max(abs(p.score - float(r["score"])) for p, r in zip(preds, expected))


def _timed(fn: Callable[[torch.Tensor], object], x: torch.Tensor) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn(x)
    return time.perf_counter() - t0, time.process_time() - c0


def _best_of(fn: Callable[[], object], n: int = 2) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def profile_groups(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> dict[str, float]:
    """Self CPU seconds per operator group for one pass (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        forward(x)
    groups: dict[str, float] = {}
    for ev in prof.key_averages():
        if not ev.key.startswith("aten::"):
            continue
        groups[_group(ev.key)] = groups.get(_group(ev.key), 0.0) + ev.self_cpu_time_total / 1e6
    return groups


def library_rates(m: int, k: int, n: int) -> dict[str, float]:
    """FLOP/s of one float32 (m x k) @ (k x n) + bias in three GEMM libraries (best of 3)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    gen = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(m, k, generator=gen), torch.randn(n, k, generator=gen), torch.randn(n, generator=gen)
    runs: dict[str, Callable[[], object]] = {"torch F.linear (MKL sgemm)": lambda: torch.nn.functional.linear(x, w, b)}
    if hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        packed = torch.ops.mkldnn._reorder_linear_weight(w, None)
        runs["oneDNN linear, prepacked weight"] = lambda: torch.ops.mkldnn._linear_pointwise(
            x, packed, b, "none", [], ""
        )
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["X", "W", "B"], ["Y"], transB=1)],
        "gemm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(w.numpy(), "W"), numpy_helper.from_array(b.numpy(), "B")],
    )
    session = ort.InferenceSession(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    runs["ONNX Runtime Gemm (MLAS)"] = lambda: session.run(None, {"X": x.numpy()})
    rates = {}
    with torch.inference_mode():
        for name, fn in runs.items():
            fn()
            rates[name] = 2.0 * m * k * n / _best_of(fn, 3)
    return rates


def measure(crops: int, variants: list[str], work: Path, config: Path) -> dict:
    from spai.config import load_config
    from spai.model import build_model

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", "/tmp/spai-inductor-cache")
    cfg = load_config(config)
    flops = crop_flops(cfg)
    rate = gemm_rate(cfg, crops=crops)
    floor = flops["total"] / rate["best"]
    m, k, n = gemm_shapes(cfg, crops)[2]  # the MLP's first Linear
    try:
        libraries = {"shape": f"{m}x{k}x{n}", **library_rates(m, k, n)}
    except Exception as exc:  # a library missing here is reported, not fatal
        libraries = {"shape": f"{m}x{k}x{n}", "error": f"{type(exc).__name__}: {exc}"}
    x = fixture_crops(crops)
    res: dict = {
        "crops": crops,
        "config": str(config.relative_to(ROOT)) if config.is_relative_to(ROOT) else str(config),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "flops": flops,
        "gemm_rates": rate,
        "floor_s": floor,
        "libraries": libraries,
        "variants": {},
    }
    reference = eager = None
    with torch.inference_mode():
        for variant in variants:
            torch.manual_seed(1234)
            model = build_model(cfg).eval()
            entry: dict = {}
            try:
                t0 = time.perf_counter()
                forward = make_forward(variant, model, work / variant)
                out = forward(x)  # warm-up (compiles)
                entry["first_call_s"] = time.perf_counter() - t0
                if eager is None:
                    eager = forward
                # alternate with eager, so both are timed in the same stretch of machine load
                wall, cpu, eager_wall = [], [], []
                for _ in range(2):
                    eager_wall.append(_timed(eager, x)[0])
                    w, c = _timed(forward, x)
                    wall.append(w)
                    cpu.append(c)
                entry["s_per_crop"] = min(wall) / crops
                entry["cpu_s_per_crop"] = min(cpu) / crops
                entry["vs_eager"] = min(eager_wall) / min(wall)
                entry["fraction_of_floor"] = floor / entry["s_per_crop"]
                if reference is None:
                    reference = out
                entry["max_diff_vs_eager"] = float((out - reference).abs().max())
                entry["fixture_max_diff"] = fixture_parity(variant, work / variant)
                if variant == "eager":
                    res["profile"] = profile_groups(forward, x)
            except Exception as exc:  # a variant that cannot run here is reported, not fatal
                entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            res["variants"][variant] = entry
            print(json.dumps({variant: entry}), flush=True)
    res["load"] = os.getloadavg()[0]
    return res


def to_markdown(r: dict) -> str:
    crops, floor = r["crops"], r["floor_s"]
    fl = r["flops"]
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_profile.py --crops {crops} --cfg {r['config']}` (run by "
        f"`benchmarks/run_all.sh`): the feature extractor on {crops} crops at once (three "
        "spectral views each through the ViT, per-layer projectors and statistics), seeded "
        "weights, float32, "
        f"{r['threads']} torch threads, {r['cpus']} logical CPUs ({r['machine']}), torch "
        f"{r['torch']}; everything below from one process (load average at the end: "
        f"{r['load']:.1f}).",
        "",
        f"GEMM FLOPs of one crop, counted from {r['config']}: {fl['total'] / 1e9:.1f} G "
        + "("
        + ", ".join(f"{k} {v / 1e9:.1f} G" for k, v in fl.items() if k != "total")
        + "). "
        f"float32 GEMM rate measured on the model's Linear shapes: best "
        f"{r['gemm_rates']['best'] / 1e9:.1f} GFLOP/s (range "
        f"{min(v for k, v in r['gemm_rates'].items() if k != 'best') / 1e9:.1f}-"
        f"{r['gemm_rates']['best'] / 1e9:.1f}), so the floor is **{floor:.2f} s per crop**.",
        "",
        "The same GEMM (" + r["libraries"]["shape"] + ", float32, with bias) in three libraries "
        "here: "
        + (
            "; ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in r["libraries"].items() if k != "shape" and k != "error")
            or r["libraries"].get("error", "-")
        )
        + ". The floor above uses torch's own rate (what the shipped eager code calls); a "
        "variant above 100% runs its GEMMs in a faster library.",
        "",
        "Each variant is timed alternately with eager (two rounds, best of each), so the "
        "speed-up compares the same stretch of machine load (eager against itself shows the "
        "noise: 1.00x on a quiet machine); CPU seconds are the process's own (all threads).",
        "",
        "| variant | s/crop | CPU s/crop | speed-up vs eager | fraction of floor (goal 85%) | first call (s) | max diff of patch vectors vs eager | fixture: max score diff (must be < 1e-5) | kept |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, v in r["variants"].items():
        if "error" in v:
            lines.append(f"| {name} | - | - | - | - | - | - | - | no: {v['error']} |")
            continue
        ok = v["fixture_max_diff"] < 1e-5
        faster = v["vs_eager"] > 1.03
        kept = (
            "shipped"
            if name == "eager"
            else ("would win" if ok and faster else "no: " + ("slower" if ok else "drifts"))
        )
        lines.append(
            f"| {name} | {v['s_per_crop']:.2f} | {v['cpu_s_per_crop']:.2f} | {v['vs_eager']:.2f}x | "
            f"{v['fraction_of_floor']:.0%} | "
            f"{v['first_call_s']:.1f} | {v['max_diff_vs_eager']:.1e} | "
            f"{v['fixture_max_diff']:.1e} | {kept} |"
        )
    prof = r.get("profile")
    if prof:
        total = sum(prof.values())
        gemm = prof.get("GEMM (Linear layers)", 0.0)
        lines += [
            "",
            f"Where eager's time goes (torch.profiler, operator self time of one pass, "
            f"{total / crops:.2f} s per crop in all under the profiler):",
            "",
            "| operator group | s per crop | share |",
            "|---|---:|---:|",
        ]
        for name, sec in sorted(prof.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {name} | {sec / crops:.3f} | {sec / total:.1%} |")
        linear = fl["total"] - fl["attention (QK^T, AV)"] - fl["patch embedding"]
        lines += [
            "",
            f"The Linear layers' GEMMs ran at {linear * crops / gemm / 1e9:.1f} GFLOP/s "
            f"under the profiler (the measured rate: {r['gemm_rates']['best'] / 1e9:.1f}); "
            f"everything that is not a Linear GEMM took {1 - gemm / total:.0%} of the time.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, default=4)
    ap.add_argument(
        "--cfg",
        type=Path,
        default=ROOT / "configs" / "spai.yaml",
        help="model config (the tiny fixture's for a quick check of the script)",
    )
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--write", type=Path, default=None, help="replace this section of the file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="spai-bench-profile-") as tmp:
        res = measure(args.crops, args.variants, Path(tmp), args.cfg.resolve())
    print(json.dumps(res))
    md = to_markdown(res)
    print(md)
    if args.write:
        _report.write_section(SECTION, md, args.write)


if __name__ == "__main__":
    main()
