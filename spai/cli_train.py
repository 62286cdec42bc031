"""``python -m spai train``: the official training arguments on top of ``spai.training.train``.

Registered on the ``cli`` group of ``spai/__main__.py``. Official names are kept; ``--lmdb`` is
accepted but refused (LMDB data sets are not supported), ``--amp-opt-level`` maps O0 to no mixed
precision and O1/O2 to torch.amp on CUDA, ``--local_rank`` is ignored (single process).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

__all__ = ["train_cmd"]


@click.command("train")
@click.option("--cfg", required=True, type=click.Path(exists=True, dir_okay=False), help="YAML config.")
@click.option("--batch-size", type=int, help="Batch size (DATA.BATCH_SIZE).")
@click.option("--learning-rate", type=float, help="Base learning rate (TRAIN.BASE_LR).")
@click.option(
    "--data-path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Training CSV (image,class,split); its train and val rows are used.",
)
@click.option(
    "--csv-root-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Root for relative image paths (default: the CSV's folder).",
)
@click.option("--lmdb", type=click.Path(), help="Not supported here (accepted for compatibility).")
@click.option(
    "--pretrained",
    type=click.Path(exists=True, dir_okay=False),
    help="MFM backbone weights (keys under 'encoder.'); the backbone is then frozen.",
)
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), help="Checkpoint to resume.")
@click.option("--accumulation-steps", type=int, help="Gradient accumulation steps.")
@click.option("--use-checkpoint", is_flag=True, help="Accepted; activation checkpointing is not used.")
@click.option(
    "--amp-opt-level",
    type=click.Choice(["O0", "O1", "O2"]),
    default="O1",
    show_default=True,
    help="O0: float32; O1/O2: torch.amp on CUDA.",
)
@click.option("--output", type=click.Path(file_okay=False), default="output", show_default=True)
@click.option("--tag", default="spai", show_default=True, help="Run name (folder under --output).")
@click.option("--local_rank", type=int, default=0, help="Ignored (single-process training).")
@click.option(
    "--test-csv",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV whose test rows are scored every epoch (repeatable).",
)
@click.option(
    "--test-csv-root-dir",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Root for each --test-csv, in order (default: each CSV's folder).",
)
@click.option("--data-workers", type=int, help="DataLoader workers (DATA.NUM_WORKERS).")
@click.option("--disable-pin-memory", is_flag=True)
@click.option("--data-prefetch-factor", type=int)
@click.option("--save-all", is_flag=True, help="Keep a checkpoint of every epoch.")
@click.option("--opt", nargs=2, multiple=True, metavar="KEY VALUE", help="Config override.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--epochs", type=int, help="TRAIN.EPOCHS override.")
def train_cmd(
    cfg,
    batch_size,
    learning_rate,
    data_path,
    csv_root_dir,
    lmdb,
    pretrained,
    resume,
    accumulation_steps,
    use_checkpoint,
    amp_opt_level,
    output,
    tag,
    local_rank,
    test_csv,
    test_csv_root_dir,
    data_workers,
    disable_pin_memory,
    data_prefetch_factor,
    save_all,
    opt,
    device,
    epochs,
) -> None:
    """Train or fine-tune SPAI on a CSV data set."""
    from spai.config import load_config
    from spai.training import TrainOptions, read_csv_samples, train

    if lmdb:
        raise click.UsageError("--lmdb data sets are not supported; give a CSV with --data-path")
    if len(test_csv_root_dir) > len(test_csv):
        raise click.UsageError("more --test-csv-root-dir than --test-csv values")
    opts = [(k, v) for k, v in opt]
    for key, value in (
        ("DATA.BATCH_SIZE", batch_size),
        ("TRAIN.BASE_LR", learning_rate),
        ("TRAIN.ACCUMULATION_STEPS", accumulation_steps),
        ("DATA.NUM_WORKERS", data_workers),
        ("TRAIN.EPOCHS", epochs),
        ("DATA.PREFETCH_FACTOR", data_prefetch_factor),
    ):
        if value is not None:
            opts.append((key, value))
    if disable_pin_memory:
        opts.append(("DATA.PIN_MEMORY", False))
    opts += [("OUTPUT", output), ("TAG", tag), ("DATA.DATA_PATH", data_path)]
    config = load_config(cfg, opts)
    roots = list(test_csv_root_dir) + [None] * (len(test_csv) - len(test_csv_root_dir))
    try:  # a bad CSV (a row escaping its root, a bad class) is the user's to fix: one line
        for csv_file, root in [(data_path, csv_root_dir), *zip(test_csv, roots)]:
            read_csv_samples(Path(csv_file), Path(root) if root else None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    options = TrainOptions(
        data_path=Path(data_path),
        csv_root_dir=Path(csv_root_dir) if csv_root_dir else None,
        pretrained=Path(pretrained) if pretrained else None,
        resume=Path(resume) if resume else None,
        test_csvs=tuple((Path(c), Path(r) if r else None) for c, r in zip(test_csv, roots)),
        device=device,
        amp=amp_opt_level != "O0",
        save_all=save_all,
    )

    def show(event: dict) -> None:
        if event["type"] == "step" and event["step"] % max(1, config.print_freq) == 0:
            click.echo(
                f"step {event['step']}/{event['total_steps']} epoch {event['epoch']} "
                f"loss {event['loss']:.4f} lr {event['lr']:.2e}"
            )
        elif event["type"] == "epoch":
            test = {k: round(v.get("auc", float("nan")), 4) for k, v in event.get("test", {}).items()}
            click.echo(
                f"epoch {event['epoch']}: val loss {event['val_loss']:.4f} "
                f"AUC {event['val_auc']:.4f} AP {event['val_ap']:.4f} "
                f"{'(best) ' if event['best'] else ''}{'test AUC ' + str(test) if test else ''}"
            )
        elif event["type"] == "info":
            click.echo(json.dumps(event))

    result = train(config, options, on_progress=show)
    summary = dataclasses.asdict(result)
    summary.pop("history")
    click.echo(json.dumps(summary, default=str, indent=2))
