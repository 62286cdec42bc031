"""Command line: ``python -m spai infer|test|train|export-onnx|validate-onnx``, and
``convert-checkpoint`` (a trusted checkpoint with Python objects -> a plain state dict).

Argument names and defaults follow the official SPAI CLI, so existing scripts keep working;
``--device``, ``--max-pixels`` and ``--backend`` are additions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from core.atomic import write_text
from core.cli_errors import UserError, run_main

__all__ = ["cli", "main"]

NO_MODEL_HINT = (
    "pass --model PATH (a SPAI checkpoint), or place the official weights at weights/spai.pth (see weights/README.md)"
)


def _opts(values: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in values]


def _model_or_default(model: str | None) -> str:
    """``--model`` as given, else the catalogue's choice (``spai.weights.active_model``): the
    official weights if present, else the shipped demo model (announced on stderr)."""
    from spai.weights import DEMO, DEMO_WEIGHTS, OFFICIAL_WEIGHTS, active_model

    active = active_model(model)
    if active.source == DEMO:
        if not active.exists:
            raise UserError(
                f"no model: neither {OFFICIAL_WEIGHTS} nor the demo model {DEMO_WEIGHTS} exists; {NO_MODEL_HINT}"
            )
        click.echo(
            f"DEMO model: {active.weights} (a small model trained on offline data, not the "
            f"official SPAI weights; {NO_MODEL_HINT})",
            err=True,
        )
    return active.weights


def _load_detector(model: str, cfg: str | None, device: str, opts, max_pixels: int, resize_to):
    from spai.checkpoint import CheckpointError
    from spai.detector import Detector

    path = Path(model)
    if not path.exists():
        raise UserError(f"model file not found: {model}; {NO_MODEL_HINT}")
    try:
        return Detector.load(path, cfg, device, opts=opts, max_pixels=max_pixels or None, resize_to=resize_to)
    except (CheckpointError, FileNotFoundError, ValueError, RuntimeError) as exc:
        raise UserError(f"{model}: {exc}") from None


def _progress(desc: str):
    bar = tqdm(desc=desc, unit="img", file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


_common = [
    click.option(
        "--cfg",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config YAML in the official layout. Default: the checkpoint's sidecar "
        "<name>.yaml if present, else ./configs/spai.yaml.",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=None,
        help="Images scored together, their crops sharing backbone passes. Default: as "
        "many as fill one crop chunk (MODEL.FEATURE_EXTRACTION_BATCH, or fewer "
        "when memory is short); 1 scores one image at a time.",
    ),
    click.option(
        "--split",
        default="test",
        show_default=True,
        help="Only CSV rows with this split are scored; other rows get an empty score.",
    ),
    click.option("--lmdb", type=click.Path(), default=None, help="Not supported (official LMDB input)."),
    click.option(
        "--output",
        "-o",
        type=click.Path(file_okay=False),
        default="./output",
        show_default=True,
        help="Output directory for the scored CSVs.",
    ),
    click.option("--tag", default="spai", show_default=True, help="Name of the score column."),
    click.option(
        "--resize-to",
        type=int,
        default=None,
        help="Resize so the SMALLEST side equals this (official SmallestMaxSize) before scoring.",
    ),
    click.option(
        "--opt",
        nargs=2,
        multiple=True,
        metavar="KEY VALUE",
        help="Override a config key, e.g. --opt MODEL.FEATURE_EXTRACTION_BATCH 64.",
    ),
    click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="auto = CUDA when present, else CPU.",
    ),
    click.option(
        "--max-pixels",
        type=int,
        default=100_000_000,
        show_default=True,
        help="Refuse images above this many pixels before decoding (0 = no cap of ours; "
        "Pillow's own guard still refuses above 200 million).",
    ),
]


def common_options(fn):
    for opt in reversed(_common):
        fn = opt(fn)
    return fn


@click.group()
def cli() -> None:
    """SPAI: any-resolution AI-generated image detection by spectral learning."""


@cli.command()
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="A directory of images or an official-format CSV (image,class,split). Repeatable.",
)
@click.option(
    "--input-csv-root-dir",
    "roots",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Root for the relative paths of each CSV, in --input order (default: the CSV's folder).",
)
@click.option(
    "--model",
    "-m",
    default=None,
    help="Checkpoint file, or a directory of ckpt_epoch_*.pth (the newest is used). "
    "Default: weights/spai.pth if present, else the demo model.",
)
@click.option(
    "--backend",
    type=click.Choice(["torch", "onnx"]),
    default="torch",
    show_default=True,
    help="onnx: score with onnxruntime on graphs exported to <output>/onnx (exported if missing).",
)
@common_options
def infer(
    inputs, roots, model, backend, cfg, batch_size, split, lmdb, output, tag, resize_to, opt, device, max_pixels
) -> None:
    """Score images; writes <output>/<csv or dir name>.csv with a <tag> score column."""
    from spai.inference import iter_checkpoints, read_input, score_table

    if lmdb:
        raise UserError("--lmdb input is not supported; use a directory or CSV")
    try:  # every input is read before any model is loaded
        tables = [read_input(inp, roots[i] if i < len(roots) else None, split) for i, inp in enumerate(inputs)]
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    model = _model_or_default(model)
    opts = _opts(opt)
    export = any(k == "TEST.EXPORT_IMAGE_PATCHES" and v.strip() in ("True", "true", "1") for k, v in opts)
    try:
        ckpt = list(iter_checkpoints(model))[-1] if Path(model).exists() else Path(model)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    det = _load_detector(str(ckpt), cfg, device, opts, max_pixels, resize_to)
    if backend == "onnx":
        det.use_onnx(Path(output) / "onnx")
    click.echo(f"model: {det.info.path} ({det.info.origin}, sha256 {det.info.sha256[:12]}) on {det.device}", err=True)
    total_ok = total_bad = 0
    for inp, table in zip(inputs, tables):
        bar, update = _progress(Path(inp).name)
        summary = score_table(
            det, table, output, tag=tag, split=split, export_patches=export, on_progress=update, batch_size=batch_size
        )
        bar.close()
        total_ok += summary.scored
        total_bad += summary.failed
        for row, pred in zip(table.rows, summary.predictions):  # this call's failures
            if pred is not None and not pred.ok:
                click.echo(f"  error: {row['image']}: {pred.error}", err=True)
        click.echo(f"{summary.output_csv}: {summary.line}")
    if len(inputs) > 1:
        click.echo(f"total: {total_ok} scored, {total_bad} failed")


@cli.command()
@click.option(
    "--test-csv",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Official-format CSV with real labels. Repeatable.",
)
@click.option(
    "--test-csv-root-dir",
    "roots",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Root for each CSV's relative paths, in --test-csv order.",
)
@click.option(
    "--model",
    "-m",
    default=None,
    help="Checkpoint file, or a directory of ckpt_epoch_*.pth (each is evaluated). "
    "Default: weights/spai.pth if present, else the demo model.",
)
@click.option("--update-csv", is_flag=True, help="Also write the scored CSVs (as infer does).")
@common_options
def test(
    test_csv, roots, model, update_csv, cfg, batch_size, split, lmdb, output, tag, resize_to, opt, device, max_pixels
) -> None:
    """Evaluate on labelled CSVs: AUC, AP and accuracy at 0.5 per CSV (printed and JSON)."""
    from robustness.metrics import acc_at, ap, auc

    from spai.inference import (
        check_labels,
        iter_checkpoints,
        labels_and_scores,
        read_input,
        score_table,
    )

    if lmdb:
        raise UserError("--lmdb input is not supported; use CSV files")
    try:  # every CSV is read and checked before any model is loaded or any image scored
        tables = [read_input(p, roots[i] if i < len(roots) else None, split) for i, p in enumerate(test_csv)]
        for table, csv_path in zip(tables, test_csv):
            check_labels(table, csv_path, split)
        model = _model_or_default(model)
        ckpts = list(iter_checkpoints(model)) if Path(model).exists() else [Path(model)]
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    results = []
    out_dir = Path(output)
    for ckpt in ckpts:
        det = _load_detector(str(ckpt), cfg, device, _opts(opt), max_pixels, resize_to)
        for table, csv_path in zip(tables, test_csv):
            bar, update = _progress(Path(csv_path).name)
            target = out_dir if update_csv else out_dir / ".test-scratch"
            summary = score_table(det, table, target, tag=tag, split=split, on_progress=update, batch_size=batch_size)
            bar.close()
            y, s = labels_and_scores(summary, table)
            row = {
                "model": str(ckpt),
                "csv": str(csv_path),
                "n": int(len(y)),
                "scored": summary.scored,
                "failed": summary.failed,
                "acc": acc_at(y, s) if len(y) else None,
                "ap": None,
                "auc": None,
            }
            if len(set(y.tolist())) == 2:
                row["auc"] = auc(y, s)
                row["ap"] = ap(y, s)
            results.append(row)
            fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
            click.echo(
                f"{Path(csv_path).name}: n={row['n']} ACC={fmt(row['acc'])} AP={fmt(row['ap'])} "
                f"AUC={fmt(row['auc'])} ({summary.line})"
            )
            if row["auc"] is None:
                click.echo("  (AUC/AP need both classes in the CSV)")
    out_json = write_text(out_dir / f"{tag}_test_metrics.json", json.dumps(results, indent=2))
    click.echo(f"metrics written to {out_json}")


@cli.command("export-onnx")
@click.option("--cfg", type=click.Path(dir_okay=False), default=None, help="Config YAML (official layout).")
@click.option(
    "--model", "-m", default=None, help="Checkpoint file. Default: weights/spai.pth if present, else the demo model."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False),
    default="./output/onnx",
    show_default=True,
    help="Directory for patch_encoder.onnx and patch_aggregator.onnx.",
)
@click.option("--tag", default="spai", show_default=True, help="Accepted for compatibility.")
@click.option("--opt", nargs=2, multiple=True, metavar="KEY VALUE", help="Override a config key.")
@click.option(
    "--exclude-preprocessing",
    is_flag=True,
    help="Encoder takes (crops, low, high) instead of computing the spectral split itself.",
)
def export_onnx_cmd(cfg, model, output, tag, opt, exclude_preprocessing) -> None:
    """Export the patch encoder (B x 3 x 224 x 224 -> B x P) and aggregator (1 x L x P -> logit)."""
    from spai.onnx_backend import export_onnx

    det = _load_detector(_model_or_default(model), cfg, "cpu", _opts(opt), 0, None)
    enc, agg = export_onnx(det.model, output, exclude_preprocessing=exclude_preprocessing)
    click.echo(f"wrote {enc}\nwrote {agg}")


@cli.command("validate-onnx")
@click.option("--cfg", type=click.Path(dir_okay=False), default=None, help="Config YAML.")
@click.option(
    "--model", "-m", default=None, help="Checkpoint file. Default: weights/spai.pth if present, else the demo model."
)
@click.option("--onnx-dir", type=click.Path(file_okay=False), default="./output/onnx", show_default=True)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="Images (files or a directory) to compare PyTorch and onnxruntime on.",
)
def validate_onnx(cfg, model, onnx_dir, inputs) -> None:
    """Compare PyTorch and onnxruntime logits on some images (max abs difference)."""
    from spai.onnx_backend import OnnxModel

    det = _load_detector(_model_or_default(model), cfg, "cpu", [], 0, None)
    onnx = OnnxModel(onnx_dir, det.model)
    files = [p for i in inputs for p in (sorted(Path(i).iterdir()) if Path(i).is_dir() else [Path(i)])]
    worst = 0.0
    for f in tqdm(files, desc="validate", file=sys.stderr):
        pred = det.score_one(f)
        if not pred.ok:
            continue
        x, _ = det.prepare(f)
        logit, _ = onnx.forward_image(x)
        worst = max(worst, abs(logit - pred.logit))
    click.echo(f"max |logit_torch - logit_onnx| = {worst:.3e} over {len(files)} images")


@cli.command("convert-checkpoint")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option(
    "--trust",
    is_flag=True,
    help="Allow the Python objects the file names for this one load. Only for files "
    "from a source you trust: unpickling them can run code.",
)
def convert_checkpoint(src, dst, trust) -> None:
    """Rewrite a checkpoint holding Python objects beyond tensors as a plain state dict
    ({"model": state_dict}) that every command loads with torch.load(weights_only=True)."""
    from spai.checkpoint import CheckpointError, convert_trusted, unsafe_globals

    try:
        names = unsafe_globals(src)
        listed = ", ".join(names) or "(none named: legacy format or plain file)"
        if not trust:
            raise click.ClickException(
                f"{src} names these Python objects: {listed}. Converting it unpickles them, which "
                "can run code; pass --trust only if you trust where the file came from."
            )
        click.echo(
            f"WARNING: loading {src} with these objects allowed: {listed}. Unpickling "
            "them can run code; you said you trust this file (--trust).",
            err=True,
        )
        out, _ = convert_trusted(src, dst)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out} (a plain state dict; loads with weights_only=True)")


def _register_optional() -> None:
    import importlib.util

    if importlib.util.find_spec("spai.cli_train") is not None:  # lands with the training code
        from spai.cli_train import train_cmd

        cli.add_command(train_cmd, "train")


_register_optional()


def main(argv: list[str] | None = None) -> int:
    """``python -m spai``: user errors print one line and exit with status 2."""
    return run_main(lambda: cli.main(args=argv, prog_name="python -m spai", standalone_mode=False))


if __name__ == "__main__":
    sys.exit(main())
