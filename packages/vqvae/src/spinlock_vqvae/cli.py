"""The ``spinlock`` command."""

from __future__ import annotations

import click

from trainer_core.cli_support import TrainerGroup, echo_json


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spinlock-vqvae", prog_name="spinlock")
def cli() -> None:
    """Spinlock: operator behavioural datasets and the categorical hierarchical VQ-VAE tokenizer."""


@cli.command("generate-dataset")
@click.option("--samples", type=click.IntRange(min=1), default=4000, show_default=True, help="Number of random operators to roll out.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="HDF5 file to write (e.g. datasets/test_4k.h5).")
@click.option("--seed", type=int, default=0, show_default=True, help="Everything is deterministic from it.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def generate_dataset(samples, output, seed, force, progress, as_json):
    """Roll out small stochastic neural operators and write their behavioural features.

    Each sample is one random convolutional update rule with noise on a 3-channel 32x32 field,
    rolled out for 48 steps; its features (spatial statistics, spectral band power, gradients,
    temporal autocorrelation and growth, cross-channel correlation) form one row.
    """
    from pathlib import Path

    from spinlock_vqvae.dataset import FeatureDataset, generate
    from trainer_core.errors import UsageError

    if Path(output).exists() and not force:
        raise UsageError(f"{output} already exists; choose another --output or pass --force to replace it")
    path = generate(output, samples, seed, progress=progress)
    with FeatureDataset(path) as data:
        summary = {"path": str(path), "samples": len(data), "features": len(data.feature_names), "seed": seed}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {summary['samples']} samples x {summary['features']} features to {path}")


def main() -> None:
    cli.main(prog_name="spinlock")
