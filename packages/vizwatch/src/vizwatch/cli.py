"""The ``vizwatch`` command: train the seed's classifier, animate runs, list runs."""

from __future__ import annotations

from pathlib import Path

import click

from trainer_core import FiniteFloatRange, TrainerGroup, UsageError, echo_json, format_value, render_table

DEFAULT_VIZ_ROOT = "training_feature_visualizations"


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vizwatch", prog_name="vizwatch")
def cli() -> None:
    """Watch any model learn: latent-space snapshots during training, runs and animations.

    Any trainer-core trainer can enable the snapshots; `vizwatch train` is the seed's imbalanced
    X-ray source classifier (focal loss, oversampling) with --visualize-training.
    """


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="JSON or YAML config (keys: see the README).")
@click.option(
    "--dataset",
    type=click.Choice(["xray", "digits"]),
    help="xray: built-in imbalanced X-ray sources (default); digits: scikit-learn's digits.",
)
@click.option("--classes", type=int, help="Number of classes (xray: 2-4; digits: 2-10). Default 4.")
@click.option("--samples", type=int, help="Generated sources for xray. Default 12000.")
@click.option("--epochs", type=int, help="Default 150.")
@click.option("--batch-size", type=int, help="Default 256.")
@click.option("--learning-rate", type=FiniteFloatRange(), help="AdamW learning rate. Default 0.001.")
@click.option("--oversample-target", type=FiniteFloatRange(), help="Grow minority classes to this fraction of the largest (0: off). Default 0.")
@click.option("--focal-gamma", type=FiniteFloatRange(), help="Focal loss gamma (0 = cross-entropy). Default 2.")
@click.option("--visualize-training", is_flag=True, default=None, help="Snapshot the latent space during training.")
@click.option("--viz-every", type=int, help="Snapshot every N epochs, besides epoch 1, 5, 10, 25, 50, 75, 100 and the last. Default 10.")
@click.option("--viz-method", type=click.Choice(["tsne", "umap", "pca"]), help="Embedding method. Default tsne.")
@click.option("--viz-root", type=click.Path(file_okay=False), help="Where run_NNN folders go. Default training_feature_visualizations.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Everything is deterministic from it. Default 0.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config key (repeatable).")
@click.option(
    "--output", "-o", type=click.Path(file_okay=False), help="Run directory for checkpoints and metrics (default: runs/vizwatch/run_NNN)."
)
@click.option(
    "--root",
    default="runs/vizwatch",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Without --output: a new ROOT/run_NNN is made (never reused).",
)
@click.option("--resume", type=click.Path(), help="Run directory (or checkpoint) to continue from.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
def train(
    config_path,
    dataset,
    classes,
    samples,
    epochs,
    batch_size,
    learning_rate,
    oversample_target,
    focal_gamma,
    visualize_training,
    viz_every,
    viz_method,
    viz_root,
    seed,
    overrides,
    output,
    root,
    resume,
    progress,
    as_json,
):
    """Train the imbalanced classifier (the seed's main.py) with core checkpoints and metrics."""
    from trainer_core import allocate_run_dir, get_plugin_manager, load_config, resume_config_path
    from vizwatch.trainer.config import VizwatchConfig
    from vizwatch.trainer.layout import LAYOUT

    flags = {
        "dataset": dataset,
        "classes": classes,
        "samples": samples,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "oversample_target": oversample_target,
        "focal_gamma": focal_gamma,
        "visualize_training": visualize_training,
        "viz_every": viz_every,
        "viz_method": viz_method,
        "viz_root": viz_root,
        "seed": seed,
    }
    if resume is not None and config_path is None:
        config_path = resume_config_path(resume, LAYOUT.name, LAYOUT.checkpoint_dir)
    config = load_config(VizwatchConfig, config_path, flags, overrides)
    if resume is None and output is None:
        output = allocate_run_dir(root)
    from vizwatch.trainer.train import train as run_training

    summary = run_training(config, output, resume=resume, pm=get_plugin_manager(), progress=progress)
    if as_json:
        echo_json(summary)
        return
    m = summary["metrics"]
    click.echo(
        f"{summary['status']}: epoch {summary['epoch']}; val acc {m['val_acc']:.4f}, balanced acc {m['val_balanced_acc']:.4f}, "
        f"macro-F1 {m['val_macro_f1']:.4f}; checkpoints in {summary['run_dir']}/checkpoints"
    )
    if config.visualize_training:
        from vizwatch.runs import list_runs

        latest = list_runs(config.viz_root)[-1:] if list_runs(config.viz_root) else []
        for run in latest:
            click.echo(f"frames: {run['path']} ({run['frames']} frames; make an animation with `vizwatch animate {run['path']}`)")


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["gif", "mp4"]), default="gif", show_default=True)
@click.option("--fps", type=FiniteFloatRange(), default=2.0, show_default=True, help="Frames per second.")
@click.option(
    "--output", type=click.Path(dir_okay=False), help="Output file (default: RUN_DIR/training_animation.gif or training_evolution.mp4)."
)
def animate(run_dir, fmt, fps, output):
    """Animate a run's frames (Pillow/imageio; no ImageMagick or system ffmpeg needed)."""
    from vizwatch.animate import animate as make_animation

    click.echo(f"wrote {make_animation(run_dir, fmt, fps, output)}")


@cli.command()
@click.argument("root", required=False, default=DEFAULT_VIZ_ROOT, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(root, as_json):
    """List visualization runs under ROOT: epochs, best validation accuracy, frames."""
    from vizwatch.runs import list_runs

    if root != DEFAULT_VIZ_ROOT and not Path(root).is_dir():
        raise UsageError(f"{root} is not a directory; give the folder holding run_* visualization runs")
    found = list_runs(root)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"no runs under {root}", err=True)
        return
    rows = [
        (
            r["run"],
            r["method"] or "-",
            f"{r['last_epoch'] or '-'}/{r['total_epochs'] or '-'}",
            format_value(r["best_val_acc"]) if r["best_val_acc"] is not None else "-",
            r["frames"],
            r["status"],
            r["start_time"] or "-",
        )
        for r in found
    ]
    click.echo(render_table(("RUN", "METHOD", "EPOCHS", "BEST VAL ACC", "FRAMES", "STATUS", "STARTED"), rows))


def main() -> None:
    cli.main(prog_name="vizwatch")
