"""The ``c2v`` command: generate data, train, analyse checkpoints."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from trainer_core import FiniteFloatRange, TrainerGroup, echo_json


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="choice2vec", prog_name="c2v")
def cli() -> None:
    """Choice2Vec: self-supervised representations of behaviour (JAX/Flax), with clustering analysis."""


@cli.command("generate-data")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="trials file to write: .csv or .h5")
@click.option("--participants", type=click.IntRange(min=2, max=100_000), default=48, show_default=True)
@click.option("--trials", "trials_per_participant", type=click.IntRange(min=16, max=1_000_000), default=400, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--lapse-accuracy", type=FiniteFloatRange(0, 1), help="P(correct) of a disengaged trial (default 0.5).")
@click.option("--stay-engaged", type=FiniteFloatRange(0, 1, max_open=True), help="P(engaged -> engaged) per trial (default 0.98).")
@click.option("--stay-disengaged", type=FiniteFloatRange(0, 1, max_open=True), help="P(disengaged -> disengaged) (default 0.95).")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.option("--json", "as_json", is_flag=True)
def generate_data(output, participants, trials_per_participant, seed, lapse_accuracy, stay_engaged, stay_disengaged, force, as_json):
    """Simulate the decision task (see the README for the model and its difficulty knobs)."""
    from choice2vec.data import save_trials
    from choice2vec.task import TaskConfig, simulate
    from trainer_core import UsageError

    if Path(output).exists() and not force:
        raise UsageError(f"{output} already exists; choose another --output or pass --force to replace it")
    knobs = {
        k: v
        for k, v in {"lapse_accuracy": lapse_accuracy, "stay_engaged": stay_engaged, "stay_disengaged": stay_disengaged}.items()
        if v is not None
    }
    trials = simulate(TaskConfig(participants=participants, trials_per_participant=trials_per_participant, seed=seed, **knobs))
    save_trials(trials, output)
    summary = {"path": output, "participants": participants, "trials": len(trials), "engaged_fraction": float(trials.state.mean())}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {len(trials)} trials of {participants} participants to {output} ({summary['engaged_fraction']:.1%} engaged)")


@cli.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="JSON/YAML config (configs/choice2vec/quick.yaml...).")
@click.option("--epochs", type=click.IntRange(min=1, max=100_000_000), help="Optimisation steps (the seed's epochs; default 150000).")
@click.option("--checkpoint-every", type=click.IntRange(min=1, max=100_000_000), help="Epochs between checkpoints (default 10000).")
@click.option(
    "--log-every", type=click.IntRange(min=1, max=1_000_000), help="Epochs between console lines; also the steps run per compiled call (default 1000)."
)
@click.option("--output-dir", type=click.Path(file_okay=False), help="Run directory (default training_checkpoints_<timestamp>).")
@click.option("--resume", type=click.Path(file_okay=False), help="Run directory to continue from its last checkpoint, bit-identically.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Training seed (default 0).")
@click.option("--data", "data_source", type=click.Path(dir_okay=False), help="Trials file (.csv/.h5) instead of the simulated default.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config key, e.g. model.layers=3 (repeatable).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--devices", type=click.IntRange(min=1, max=4096), default=None,
              help="Local devices sharing each batch (default: as many as split training.batch_size evenly).")  # fmt: skip
@click.option("--coordinator", envvar="JAX_COORDINATOR_ADDRESS", metavar="HOST:PORT",
              help="Several processes: process 0's address (env JAX_COORDINATOR_ADDRESS).")  # fmt: skip
@click.option("--num-processes", type=click.IntRange(min=1, max=65_536), envvar="JAX_NUM_PROCESSES",
              help="Several processes: how many (env JAX_NUM_PROCESSES).")  # fmt: skip
@click.option("--process-id", type=click.IntRange(min=0, max=65_535), envvar="JAX_PROCESS_ID",
              help="Several processes: this one's index, 0 writes (env JAX_PROCESS_ID).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end.")
def train_cmd(config_path, epochs, checkpoint_every, log_every, output_dir, resume, seed, data_source, overrides, progress, devices,
              coordinator, num_processes, process_id, as_json):  # fmt: skip
    """Train Choice2Vec; checkpoint, cluster and draw every --checkpoint-every epochs."""
    from choice2vec.config import Choice2VecConfig
    from choice2vec.train import train
    from trainer_core import UsageError, load_config

    flags = {
        "training.epochs": epochs,
        "training.checkpoint_every": checkpoint_every,
        "training.log_every": log_every,
        "training.seed": seed,
        "data.source": data_source,
    }
    if resume and output_dir:
        raise UsageError("--resume continues a run in its own directory; drop --output-dir")
    if resume and config_path is None:
        config_path = _resume_config(resume)  # the run's own config; flags on top must leave it unchanged
    config = load_config(Choice2VecConfig, config_path, flags, overrides)
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo  # --json: stdout holds the JSON alone
    with _stdout_to_stderr(bool(num_processes and num_processes > 1)):  # gloo prints its connections on stdout
        summary = train(config, output_dir=output_dir, resume=resume, progress=progress, echo=say, devices=devices,
                        processes=(coordinator, num_processes, process_id))  # fmt: skip
    if process_id and (num_processes or 1) > 1:  # process 0 reports for the job
        return
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"done: {summary['epoch']} epochs in {summary['seconds']:.0f} s ({summary['checkpoint_seconds']:.0f} s in checkpoints); {summary['run_dir']}"
        )


@contextlib.contextmanager
def _stdout_to_stderr(active: bool):
    """Point file descriptor 1 at stderr for a while (libraries' C++ code writes to it directly)."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _resume_config(run_dir: str) -> str | None:
    """The config a run was started with (written by train as config.yaml), so `--resume DIR` alone works."""
    from trainer_core import is_url

    if is_url(run_dir):  # object storage: the config the newest checkpoint recorded (verified first)
        from choice2vec.checkpoints import LAYOUT_SPEC
        from trainer_core import resume_config_path

        found = resume_config_path(run_dir, LAYOUT_SPEC.name, LAYOUT_SPEC.checkpoint_dir)
        return str(found) if found else None
    path = Path(run_dir) / "config.yaml"
    return str(path) if path.exists() else None


@cli.command("analyze")
@click.option("--list", "list_runs", is_flag=True, help="List training runs (training_checkpoints_* under --root).")
@click.option("--training-dir", type=click.Path(file_okay=False), help="Table of every checkpoint of a run, and the comparison figure.")
@click.option("--checkpoint", type=click.Path(file_okay=False), help="Details of one checkpoint_epoch_XXXXXX directory.")
@click.option("--compare", type=click.Path(file_okay=False), help="Only write training_progress_comparison.png for a run.")
@click.option("--root", type=click.Path(file_okay=False), default=".", show_default=True, help="Where --list looks.")
@click.option("--trust-pickle", is_flag=True, help="Allow reading the old script's .pkl checkpoints (a pickle can run code).")
@click.option("--json", "as_json", is_flag=True)
def analyze(list_runs, training_dir, checkpoint, compare, root, trust_pickle, as_json):
    """Analyse checkpoints: list runs, one run, one checkpoint, or the progress comparison."""
    from choice2vec import analyze as an
    from trainer_core import UsageError

    chosen = [x for x in (list_runs, training_dir, checkpoint, compare) if x]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --list, --training-dir, --checkpoint, --compare")
    if list_runs:
        result = an.list_runs(root)
    elif training_dir:
        result = an.training_dir(training_dir, trust_pickle=trust_pickle)
    elif checkpoint:
        result = an.checkpoint(checkpoint, trust_pickle=trust_pickle)
    else:
        result = an.compare(compare)
    if as_json:
        echo_json(result["data"])
    else:
        click.echo(result["text"])


def main() -> None:
    cli.main(prog_name="c2v")
