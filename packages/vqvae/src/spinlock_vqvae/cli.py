"""The ``spinlock`` command."""

from __future__ import annotations

import click

from trainer_core import FiniteFloatRange, TrainerGroup, echo_json


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spinlock-vqvae", prog_name="spinlock")
def cli() -> None:
    """Spinlock: operator behavioural datasets and the categorical hierarchical VQ-VAE tokenizer."""


@cli.command("generate-dataset")
@click.option("--samples", type=click.IntRange(min=1, max=10_000_000), default=4000, show_default=True, help="Number of random operators to roll out.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="HDF5 file to write (e.g. datasets/test_4k.h5).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Everything is deterministic from it.")
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
    from trainer_core import UsageError

    if Path(output).exists() and not force:
        raise UsageError(f"{output} already exists; choose another --output or pass --force to replace it")
    path = generate(output, samples, seed, progress=progress)
    with FeatureDataset(path) as data:
        summary = {"path": str(path), "samples": len(data), "features": len(data.feature_names), "seed": seed}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {summary['samples']} samples x {summary['features']} features to {path}")


@cli.command("train-vqvae")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="JSON or YAML config (configs/vqvae/production.json, default.yaml, quick.json).",
)
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="HDF5 dataset (overrides the config's input).")
@click.option("--output", type=click.Path(file_okay=False), help="Output directory (overrides output_dir).")
@click.option("--resume-from", type=click.Path(dir_okay=False), help="best_model.pt or last_model.pt of this output directory.")
@click.option("--epochs", type=int, help="Override epochs.")
@click.option("--batch-size", type=int, help="Override batch_size.")
@click.option("--learning-rate", type=FiniteFloatRange(), help="Override learning_rate.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config key (repeatable).")
@click.option("--drop-invalid-features", is_flag=True, help="Drop features with NaN/inf values instead of refusing the dataset.")
@click.option("--dry-run", is_flag=True, help="Validate config and dataset, show categories, model size and time per epoch; train nothing.")
@click.option("--verbose", is_flag=True, help="With --dry-run: list every category's features.")
@click.option(
    "--visualize-training", is_flag=True, help="Latent t-SNE/UMAP snapshots of every category during training (needs vizwatch installed)."
)
@click.option("--viz-method", type=click.Choice(["tsne", "umap", "pca"]), default="tsne", show_default=True)
@click.option("--viz-every", type=click.IntRange(min=1, max=1_000_000), default=10, show_default=True, help="Snapshot every N epochs (validation epochs).")
@click.option("--viz-root", type=click.Path(file_okay=False), help="Folder of run_NNN snapshot folders (vizwatch's default if not given).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train_vqvae(
    config_path,
    input_path,
    output,
    resume_from,
    epochs,
    batch_size,
    learning_rate,
    overrides,
    drop_invalid_features,
    dry_run,
    verbose,
    visualize_training,
    viz_method,
    viz_every,
    viz_root,
    progress,
    as_json,
):
    """Train the categorical hierarchical VQ-VAE tokenizer.

    Writes OUTPUT/best_model.pt (best composite metric), last_model.pt (for resuming),
    normalization_stats.npz, training_history.json and config.yaml, atomically.
    """
    from spinlock_vqvae.config import VQVAEConfig
    from trainer_core import load_config

    flags = {"input": input_path, "output_dir": output, "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate}
    config = load_config(VQVAEConfig, config_path, flags, overrides)
    if dry_run:
        from spinlock_vqvae.train import dry_run as inspect

        report = inspect(config, drop_invalid_features)
        if as_json:
            echo_json(report)
            return
        click.echo("resolved config:")
        for key, value in report["config"].items():
            click.echo(f"  {key}: {value}")
        click.echo(f"dataset: {report['samples']['train']} train / {report['samples']['val']} val samples, {report['features']} features")
        click.echo(
            f"categories: {len(report['categories'])} (silhouette {report['silhouette']:.3f}), sizes {[len(c) for c in report['categories']]}"
        )
        if verbose:
            for i, names in enumerate(report["categories"]):
                click.echo(f"  category {i}: {', '.join(names)}")
        click.echo(
            f"model: {report['parameters']:,} parameters, codebooks {report['codebook_sizes']} per category, {report['tokens_per_sample']} tokens per sample"
        )
        click.echo(f"estimated time per epoch: {report['seconds_per_epoch_estimate']:.2f} s (dry run: nothing trained or written)")
        return
    from spinlock_vqvae.train import train
    from spinlock_vqvae.visualization import options

    visualize = options(visualize_training, viz_method, viz_every, viz_root) if visualize_training else None
    if visualize_training:
        _require_plotter()
    summary = train(config, resume_from=resume_from, progress=progress, drop_invalid=drop_invalid_features, visualize=visualize)
    if as_json:
        echo_json(summary)
        return
    best = summary["best_metrics"]
    click.echo(
        f"{summary['status']} at epoch {summary['epoch']}; best: quality {best.get('reconstruction_quality', float('nan')):.4f}, "
        f"utilisation {best.get('utilization', float('nan')):.3f}, orthogonality {best.get('orthogonality', float('nan')):.3f}, "
        f"topographic {best.get('topographic_correlation', float('nan')):.3f}; see {summary['output_dir']}"
    )


@cli.command("encode-to-tokens")
@click.option("--dataset", required=True, type=click.Path(dir_okay=False), help="HDF5 dataset to encode.")
@click.option("--vqvae-model", required=True, type=click.Path(dir_okay=False), help="best_model.pt (or last_model.pt) from train-vqvae.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="HDF5 file for the tokens.")
@click.option("--batch-size", type=click.IntRange(min=1, max=1_000_000), default=4096, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def encode_to_tokens(dataset, vqvae_model, output, batch_size, force, progress, as_json):
    """Encode every row to token ids (sample x category x level), streaming in batches.

    Refuses a dataset whose feature names differ from the model's, naming the first difference.
    """
    from spinlock_vqvae.encode import encode

    summary = encode(dataset, vqvae_model, output, batch_size=batch_size, progress=progress, force=force)
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote tokens of {summary['samples']} samples ({summary['categories']} categories x 3 levels) to {summary['output']}")


def _require_plotter() -> None:
    from trainer_core import get_plugin_manager

    if not get_plugin_manager().hook.visualize_epoch_end.get_hookimpls():
        raise click.UsageError("--visualize-training needs a plotter plugin: pip install vizwatch (or -e packages/vizwatch)")


def main() -> None:
    cli.main(prog_name="spinlock")
