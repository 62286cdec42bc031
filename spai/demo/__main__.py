"""CLI: ``python -m spai.demo build`` (the demo data set), ``reproduce`` (set + model + card),
``evaluate`` (re-measure the shipped model), ``evaluate-build`` (measure it on a build with
another seed), ``calibrate`` (its verdict thresholds) and ``finetune`` (the robustness-aware
fine-tune of the shipped model, weights/demo-robust)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from spai.demo.build import BuildConfig, build_demo_set
from spai.demo.generator import AutoencoderConfig


@click.group()
def cli() -> None:
    """The offline demo data set and the shipped demo model."""


@cli.command("build")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="Folder to write (replaced if present).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--ae-steps", type=int, default=AutoencoderConfig.steps, show_default=True, help="Autoencoder training steps."
)
def build_cmd(output: Path, seed: int, ae_steps: int) -> None:
    """Build the demo data set from the real photos installed on this machine."""
    ae = dataclasses.replace(AutoencoderConfig(), seed=seed, steps=ae_steps)
    try:
        build_demo_set(BuildConfig(output=output, seed=seed, autoencoder=ae), log=lambda msg: click.echo(msg))
    except ValueError as exc:  # too few photos: say why, without a traceback
        raise click.ClickException(str(exc)) from exc


@cli.command("reproduce")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("data/demo"), show_default=True)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("weights/demo"),
    show_default=True,
    help="Where the shipped model and its card go.",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=Path("output/demo"),
    show_default=True,
    help="Training run folder (checkpoints, metrics.jsonl).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=int, help="Override TRAIN.EPOCHS of configs/demo.yaml.")
@click.option("--skip-build", is_flag=True, help="Reuse an existing data set in --data.")
def reproduce_cmd(data_dir: Path, output: Path, run_dir: Path, seed: int, epochs: int | None, skip_build: bool) -> None:
    """Build the demo set, train the demo model, evaluate it, write weights/demo and its card."""
    from spai.demo.reproduce import reproduce

    reproduce(data_dir, output, run_dir, seed, epochs, skip_build, log=click.echo)


@cli.command("evaluate")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("data/demo"), show_default=True)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("weights/demo"),
    show_default=True,
    help="Folder of the shipped model, its eval.json and card.",
)
@click.option(
    "--condition", "conditions", multiple=True, help="Condition id (repeatable); default: every registered condition."
)
def evaluate_cmd(data_dir: Path, output: Path, conditions: tuple[str, ...]) -> None:
    """Re-measure the shipped demo model on the test split and rewrite its card."""
    from spai.demo.reproduce import reevaluate

    reevaluate(data_dir, output, conditions or None, log=click.echo)


@cli.command("evaluate-build")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="A demo set built with another seed (python -m spai.demo build --seed N).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("weights/demo"),
    show_default=True,
    help="Folder of the shipped model, its eval.json and card.",
)
@click.option(
    "--condition", "conditions", multiple=True, help="Condition id (repeatable); default: the card's main conditions."
)
def evaluate_build_cmd(data_dir: Path, output: Path, conditions: tuple[str, ...]) -> None:
    """Measure the shipped demo model on another build's test split and add it to its card."""
    from spai.demo.reproduce import MAIN_CONDITIONS, evaluate_other_build

    try:
        evaluate_other_build(data_dir, output, conditions or MAIN_CONDITIONS, log=click.echo)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command("calibrate")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("data/demo"), show_default=True)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("weights/demo"),
    show_default=True,
    help="Folder of the shipped model; calibration.json goes here.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Build seed of the demo set (used when --data holds no built set).",
)
def calibrate_cmd(data_dir: Path, output: Path, seed: int) -> None:
    """Measure the shipped model's verdict thresholds on the demo test reals (read from
    --data when built there, else cut from the installed photos without building)."""
    from spai.demo.reproduce import calibrate

    calibrate(data_dir, output, seed=seed, log=click.echo)


@cli.command("finetune")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="The demo set (built with --build-seed when absent).",
)
@click.option(
    "--base",
    type=click.Path(path_type=Path),
    default=Path("weights/demo/spai_demo.pth"),
    show_default=True,
    help="The model to fine-tune.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("weights/demo-robust"),
    show_default=True,
    help="Where the fine-tuned model, its eval.json and card go.",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=Path("output/demo-robust"),
    show_default=True,
    help="Training run folder (replaced if present).",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=Path("configs/demo-robust.yaml"),
    show_default=True,
    help="Fine-tuning config; must set AUG.CONDITIONS.",
)
@click.option("--epochs", type=int, help="Override TRAIN.EPOCHS of the config.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fine-tuning seed.")
@click.option(
    "--build-seed", type=int, default=0, show_default=True, help="Seed of the demo set the base model was trained on."
)
@click.option(
    "--condition",
    "conditions",
    multiple=True,
    help="Condition id to evaluate (repeatable); default: the card's main conditions.",
)
def finetune_cmd(
    data_dir: Path,
    base: Path,
    output: Path,
    run_dir: Path,
    config: Path,
    epochs: int | None,
    seed: int,
    build_seed: int,
    conditions: tuple[str, ...],
) -> None:
    """Fine-tune the demo model with robustness conditions as training augmentation, measure it
    before and after per condition on the test split, write the model and its card."""
    from spai.demo.finetune import finetune
    from spai.demo.reproduce import MAIN_CONDITIONS

    try:
        finetune(
            data_dir,
            base,
            output,
            run_dir,
            config,
            epochs,
            seed,
            build_seed,
            conditions or MAIN_CONDITIONS,
            log=click.echo,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    cli()
