"""CLI: ``python -m spai.demo build`` (the demo data set) and ``reproduce`` (set + model + card)."""

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
@click.option("--output", type=click.Path(path_type=Path), default=Path("data/demo"),
              show_default=True, help="Folder to write (replaced if present).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ae-steps", type=int, default=AutoencoderConfig.steps, show_default=True,
              help="Autoencoder training steps.")
def build_cmd(output: Path, seed: int, ae_steps: int) -> None:
    """Build the demo data set from the real photos installed on this machine."""
    ae = dataclasses.replace(AutoencoderConfig(), seed=seed, steps=ae_steps)
    build_demo_set(BuildConfig(output=output, seed=seed, autoencoder=ae))


if __name__ == "__main__":
    cli()
