"""The ``arc`` command: headless training and checkpoint inspection."""

from __future__ import annotations

import click

from trainer_core import TrainerGroup, echo_json

INFO_FIELDS = (
    "epoch", "batch", "val_loss", "val_acc", "task_type", "bottleneck_type", "num_distractors", "use_input_output_pairs",
    "num_colors", "embedding_dim", "hidden_dim", "latent_dim", "num_conv_layers", "vocab_size", "max_message_length",
    "max_grid_size", "batch_size", "learning_rate", "temperature", "max_grids", "min_grid_size", "dataset_version",
)  # fmt: skip


ENCODER_INFO_FIELDS = (
    "epoch", "batch", "val_loss", "val_acc", "num_colors", "embedding_dim", "hidden_dim", "latent_dim", "num_conv_layers",
    "dataset_version", "max_grid_size",
)  # fmt: skip


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="arc-comm", prog_name="arc")
def cli() -> None:
    """ARC emergent communication: train headless, inspect checkpoints."""


@cli.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="JSON/YAML config (configs/arc/...).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default="checkpoints", show_default=True)
@click.option("--save-as", default=None, help="Name of the final checkpoint in --checkpoint-dir (default final_epoch_N).")
@click.option("--overwrite", is_flag=True, help="Replace the final checkpoint if one of that name exists.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(0, 10_000),
    default=1,
    show_default=True,
    help="Save autosave_<run>_epoch_N.pth every N epochs (0: never); only the newest is kept. Resume from it with --resume.",
)
@click.option("--resume", "resume_from", type=click.Path(dir_okay=False), help="Continue from a system checkpoint (optimizer state too).")
@click.option(
    "--fine-tune", "fine_tune_from", type=click.Path(dir_okay=False), help="Start from a checkpoint's weights with a fresh optimizer."
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--json", "as_json", is_flag=True)
def train(config_path, checkpoint_dir, save_as, overwrite, checkpoint_every, resume_from, fine_tune_from, overrides, as_json):
    """Train the communication system without the web app.

    The final checkpoint's name is checked before any work (exit 2 if it exists without
    --overwrite); an autosave after every --checkpoint-every epochs makes a killed run resumable."""

    from arc_comm.config import ArcConfig
    from arc_comm.session import TrainingSession, checkpoint_name_problem
    from trainer_core import UsageError, join_location, load_config, location_exists

    if resume_from and fine_tune_from:
        raise UsageError("choose --resume or --fine-tune, not both")
    config = load_config(ArcConfig, config_path, None, overrides)
    name = save_as or f"final_epoch_{config.epochs}"
    problem = checkpoint_name_problem(name)
    if problem:
        raise UsageError(f"--save-as {name!r}: {problem}")
    target = join_location(checkpoint_dir, f"{name}.pth")  # a folder, or a URL (s3://...)
    if location_exists(target) and not overwrite:
        raise UsageError(f"{target} exists; pass --overwrite to replace it, or --save-as another name")
    session = TrainingSession(config, checkpoint_dir, autosave_every=checkpoint_every)
    start = 0
    if resume_from:
        start = session.load(resume_from)
    elif fine_tune_from:
        session.load(fine_tune_from, fine_tune_lr=config.learning_rate)
    try:
        status = session.run(start, echo=None if as_json else click.echo)
        session.save_now(name, overwrite=overwrite)
    finally:
        session.close()
    summary = {**{k: status[k] for k in ("mode", "epoch", "batch", "val_loss", "val_acc")}, "checkpoint": f"{checkpoint_dir}/{name}.pth"}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{status['mode']} at epoch {status['epoch']}: val_acc {status['val_acc']:.4f}; saved {summary['checkpoint']}")


@cli.command("pretrain")
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="JSON/YAML config (encoder keys, pretrain_task, pretrain_epochs)."
)
@click.option("--task", type=click.Choice(["binary", "selection"]), default=None, help="Overrides pretrain_task.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default="checkpoints", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--json", "as_json", is_flag=True)
def pretrain(config_path, task, checkpoint_dir, overrides, as_json):
    """Pretrain the encoder alone and save checkpoint-dir/pretrained_encoder_<task>.pth.

    binary: are two grids from the same ARC task?  selection: pick a grid among the batch with a
    continuous channel. Then train with --set pretrained_encoder=checkpoints/pretrained_encoder_<task>.pth."""
    from arc_comm.config import ArcConfig
    from arc_comm.session import TrainingSession
    from trainer_core import load_config, single_process_only

    single_process_only("arc pretrain", "the encoder's pretraining is short; `arc train` is what torchrun spreads")
    overrides = (*overrides, f"pretrain_task={task}") if task else overrides
    config = load_config(ArcConfig, config_path, None, overrides)
    session = TrainingSession(config, checkpoint_dir)
    try:
        result = session.pretrain(echo=None if as_json else click.echo)
    finally:
        session.close()
    summary = {k: result[k] for k in ("mode", "epoch", "val_loss", "val_acc", "encoder")}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{config.pretrain_task} pretraining {result['mode']}: val_acc {result['val_acc']:.4f}; saved {result['encoder']}")


@cli.command("checkpoint-info")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--info-only", is_flag=True, hidden=True, help="The seed's spelling; info is all this command prints.")
@click.option("--json", "as_json", is_flag=True)
def checkpoint_info(path, info_only, as_json):
    """Print a system checkpoint's or a pretrained encoder's fields (the seed's load_checkpoint.py --info-only)."""
    from pathlib import Path

    from trainer_core import UsageError, load_checkpoint

    loaded = load_checkpoint(path)
    ckpt = loaded.files.get(Path(path).name)
    weights = next((ckpt[k] for k in ("model_state_dict", "encoder_state_dict") if isinstance(ckpt, dict) and k in ckpt), None)
    if weights is None:
        raise UsageError(f"{path} is a {loaded.info.layout} checkpoint, not an arc system checkpoint or pretrained encoder")
    fields = INFO_FIELDS if "model_state_dict" in ckpt else ("pretrain_task", "complete", *ENCODER_INFO_FIELDS)
    info = {"kind": "system" if "model_state_dict" in ckpt else "pretrained encoder", **{k: ckpt.get(k) for k in fields}}
    info["parameters"] = sum(v.numel() for v in weights.values())
    info["size_mb"] = round(Path(path).stat().st_size / 2**20, 3)
    if as_json:
        echo_json(info)
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        click.echo(f"{key:<{width}}  {value}")


def main() -> None:
    cli.main(prog_name="arc")
