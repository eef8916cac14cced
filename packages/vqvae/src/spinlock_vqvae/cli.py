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
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=256),
    default=None,
    help="Processes rolling out operators [default: one per available core]; the file is the same for any count.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def generate_dataset(samples, output, seed, force, workers, progress, as_json):
    """Roll out small stochastic neural operators and write their behavioural features.

    Each sample is one random convolutional update rule with noise on a 3-channel 32x32 field,
    rolled out for 48 steps; its features (spatial statistics, spectral band power, gradients,
    temporal autocorrelation and growth, cross-channel correlation) form one row.
    """
    import time
    from pathlib import Path

    from spinlock_vqvae.dataset import FeatureDataset, available_cores, generate
    from trainer_core import UsageError

    if Path(output).exists() and not force:
        raise UsageError(f"{output} already exists; choose another --output or pass --force to replace it")
    started = time.perf_counter()
    path = generate(output, samples, seed, progress=progress, workers=workers)
    seconds = time.perf_counter() - started
    with FeatureDataset(path) as data:
        summary = {
            "path": str(path),
            "samples": len(data),
            "features": len(data.feature_names),
            "seed": seed,
            "workers": workers or available_cores(),
            "seconds": round(seconds, 2),
        }
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"wrote {summary['samples']} samples x {summary['features']} features to {path} "
            f"in {seconds:.1f} s ({summary['workers']} worker(s))"
        )


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


@cli.command("evaluate-tokens")
@click.option("--dataset", required=True, type=click.Path(dir_okay=False), help="HDF5 dataset the tokens encode.")
@click.option("--vqvae-model", required=True, type=click.Path(dir_okay=False), help="best_model.pt (or last_model.pt) from train-vqvae.")
@click.option("--tokens", "tokens_path", type=click.Path(dir_okay=False), help="Tokens from encode-to-tokens [default: encode the dataset in memory].")
@click.option("--output", type=click.Path(dir_okay=False), help="JSON report [default: token_quality.json beside the model].")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Split of the discriminability classifiers.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of the table.")
def evaluate_tokens(dataset, vqvae_model, tokens_path, output, seed, as_json):
    """Token quality per category and overall: reconstruction error, compression, codebook use, discriminability.

    Reconstruction error of the features decoded from the tokens against the model's continuous
    reconstruction and a per-feature mean; bits of the token stream (entropy-coded estimate and
    fixed length) against float32 features; utilisation and perplexity per level; how well the
    tokens predict each operator parameter's quartile bin against the raw features. Definitions:
    the vqvae README, "Token quality".
    """
    from pathlib import Path

    from spinlock_vqvae.token_quality import evaluate_tokens as measure
    from spinlock_vqvae.token_quality import table
    from trainer_core import atomic_write_json, is_url

    report = measure(dataset, vqvae_model, tokens_path, seed=seed)
    if output is None and not is_url(vqvae_model):
        output = Path(vqvae_model).parent / "token_quality.json"
    if output is not None:
        atomic_write_json(Path(output), report)
        report["written_to"] = str(output)
    if as_json:
        echo_json(report)
        return
    click.echo(table(report))
    if output is not None:
        click.echo(f"written to {output}")


@cli.command("train-ano")
@click.option("--tokens", "tokens_path", type=click.Path(dir_okay=False), help="Tokens from encode-to-tokens (overrides the config's tokens).")
@click.option("--dataset", type=click.Path(dir_okay=False), help="The dataset they encode: operator parameters and raw features (overrides dataset).")
@click.option("--vqvae-model", type=click.Path(dir_okay=False), help="The model that wrote the tokens [default: the tokens file's provenance].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="JSON or YAML config (configs/vqvae/ano.yaml lists every key).")
@click.option("--output", type=click.Path(file_okay=False), help="Output directory (overrides output_dir).")
@click.option("--epochs", type=click.IntRange(min=1, max=1_000_000), help="Override epochs.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config key (repeatable).")
@click.option("--resume-from", type=click.Path(file_okay=False), help="An interrupted train-ano output directory: continue its models where they stopped.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def train_ano(tokens_path, dataset, vqvae_model, config_path, output, epochs, overrides, resume_from, progress, as_json):
    """Train an atomic neural operator model: an operator's tokens to its parameters.

    An MLP on the token embeddings predicts the operator parameters stored in the dataset; the same
    MLP on the raw features, ridge regression and the training mean are measured in the same run.
    Writes OUTPUT/ano_model.pt, OUTPUT/raw_features_baseline/ano_model.pt and OUTPUT/ano_results.json
    (R² per parameter on a held-out split).
    """
    from pathlib import Path

    from spinlock_vqvae.ano import train_ano as train
    from spinlock_vqvae.config import ANOConfig
    from trainer_core import UsageError, load_config

    if resume_from is not None:
        if output is not None and output != resume_from:
            raise UsageError("give either --output (a new run) or --resume-from (the run to continue), not both")
        output = resume_from
        from spinlock_vqvae.layout import ANO_MODEL_FILE

        if not (Path(resume_from) / ANO_MODEL_FILE).is_file():
            raise UsageError(f"{resume_from} has no {ANO_MODEL_FILE} to resume; give the --output folder of an interrupted train-ano")
        saved = Path(resume_from) / "config.yaml"  # the interrupted run's resolved config
        if config_path is None and saved.is_file():
            config_path = str(saved)
    flags = {"tokens": tokens_path, "dataset": dataset, "vqvae_model": vqvae_model, "output_dir": output, "epochs": epochs}
    config = load_config(ANOConfig, config_path, flags, overrides)
    results = train(config, resume=resume_from is not None, progress=progress)
    if as_json:
        echo_json(results)
        return
    from trainer_core import render_table

    models = results["models"]
    names = [n for n in ("tokens", "raw_features", "ridge_raw_features", "mean") if n in models]
    rows = [[p] + [f"{models[n]['r2'][p]:.3f}" for n in names] for p in results["parameters"]]
    rows.append(["mean"] + [f"{models[n]['r2_mean']:.3f}" for n in names])
    click.echo(f"held-out R² per parameter ({results['rows']['test']} rows; trained on {results['rows']['train']}):")
    click.echo(render_table(["parameter", *names], rows))
    if "token_to_raw_r2_ratio" in results:
        click.echo(f"tokens / raw-feature model: {results['token_to_raw_r2_ratio']:.2f} of the mean R²")
    click.echo(f"see {config.output_dir}/ano_results.json")


@cli.command("visualize-codebooks")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", type=click.Path(dir_okay=False), help="Count each code's use on this dataset [default: the quantiser's EMA usage].")
@click.option("--method", type=click.Choice(["tsne", "umap", "pca"]), default="tsne", show_default=True, help="2-D embedding of the code vectors.")
@click.option("--output", type=click.Path(dir_okay=False), help="PNG to write [default: codebooks_<model name>.png beside the model].")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def visualize_codebooks(model, dataset, method, output, as_json):
    """Draw a trained model's codebooks: one panel per level, every code a point.

    Codes of every category are embedded together per level (t-SNE, UMAP or PCA of the vectors),
    coloured by category, sized by usage, dead codes crossed. Drawn by a plotter plugin through
    core's visualize_checkpoint hook (vizwatch); spinlock-vqvae itself draws nothing.
    """
    from pathlib import Path

    from spinlock_vqvae.dataset import FeatureDataset
    from spinlock_vqvae.encode import TrainedModel
    from spinlock_vqvae.visualization import category_names, codebook_options, codebooks
    from trainer_core import UsageError, VisualizationEvent, get_plugin_manager, is_url

    pm = get_plugin_manager()
    if not pm.hook.visualize_checkpoint.get_hookimpls():
        raise UsageError("visualize-codebooks needs a plotter plugin: pip install vizwatch (or -e packages/vizwatch)")
    if output is None:
        if is_url(model):
            raise UsageError(f"{model} is a URL: give --output FILE.png for the picture")
        output = Path(model).parent / f"codebooks_{Path(model).stem}.png"
    trained = TrainedModel(model)
    tokens = None
    if dataset is not None:
        with FeatureDataset(dataset) as data:
            trained.check_names(data.feature_names, str(dataset))
            tokens = trained.tokenizer(data.read())
    names = category_names(trained.groups, trained.feature_names)
    books = codebooks(trained.model, names, tokens)
    event = VisualizationEvent(run_dir=Path(output).parent, epoch=int(trained.info.epoch or 0), step=int(trained.info.step or 0),
                               package="spinlock-vqvae", options=codebook_options(method, output), codebooks=books)  # fmt: skip
    pm.hook.visualize_checkpoint(event=event, checkpoint=trained.info)
    if not event.options.get("drawn"):
        raise UsageError("no installed plugin draws codebooks: pip install vizwatch (or -e packages/vizwatch)")
    drawn = event.options["drawn"][-1]
    summary = {
        "output": drawn["path"],
        "method": drawn["method"],
        "usage": f"counted on {dataset}" if dataset else "EMA usage of the quantiser",
        "levels": [{"level": p["level"], "codes": p["codes"], "dead": p["dead"]} for p in drawn["panels"]],
    }
    if as_json:
        echo_json(summary)
        return
    per_level = ", ".join(f"level {e['level']} {e['codes']} codes ({e['dead']} dead)" for e in summary["levels"])
    click.echo(f"wrote {summary['output']}: {per_level}; usage: {summary['usage']}")


def _require_plotter() -> None:
    from trainer_core import get_plugin_manager

    if not get_plugin_manager().hook.visualize_epoch_end.get_hookimpls():
        raise click.UsageError("--visualize-training needs a plotter plugin: pip install vizwatch (or -e packages/vizwatch)")


def main() -> None:
    cli.main(prog_name="spinlock")
