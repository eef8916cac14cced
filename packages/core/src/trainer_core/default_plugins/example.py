"""The example trainer's layout, config schema and ``core example-train`` command."""

from __future__ import annotations

import click

from trainer_core.cli.support import FiniteFloatRange
from trainer_core.example.layout import LAYOUT
from trainer_core.hookspecs import hookimpl


@hookimpl
def register_checkpoint_layouts(register):
    register(LAYOUT)


@hookimpl
def register_models(register):
    from trainer_core.models import ModelSpec

    def load(path):
        from trainer_core.example.model import load_trained

        return load_trained(path)

    register(ModelSpec(name=LAYOUT.model, package=LAYOUT.package, framework="torch", layouts=(LAYOUT.name,), load=load,
                       description="example spiral classifier (2-layer MLP)"))  # fmt: skip


@hookimpl
def register_config_schemas(register):
    from trainer_core.config import ConfigSchema
    from trainer_core.example.config import ExampleConfig

    register(ConfigSchema(name="core.example", model=ExampleConfig, description="example spiral classifier"))


@hookimpl
def register_commands(cli):
    @cli.command("example-train")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), help="JSON or YAML config (keys: see the README).")
    @click.option("--output", "-o", type=click.Path(file_okay=False), help="Run directory to write (or continue) exactly.")
    @click.option(
        "--root",
        default="runs/example",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Without --output: a new ROOT/run_NNN is made (never reused).",
    )
    @click.option("--resume", type=click.Path(), help="Checkpoint, or run directory to resume from its newest checkpoint.")
    @click.option("--epochs", type=int, help="Override epochs.")
    @click.option("--batch-size", type=int, help="Override batch_size.")
    @click.option("--learning-rate", type=FiniteFloatRange(), help="Override learning_rate.")
    @click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Override seed.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config key (repeatable).")
    @click.option("--max-steps", type=int, help="Stop after this many steps in total, as if interrupted (resume later).")
    @click.option(
        "--trust-pickle", is_flag=True, help="Allow resuming from a checkpoint that needs full unpickling (runs code: only your own files)."
    )
    @click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
    @click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
    def example_train(
        config_path, output, root, resume, epochs, batch_size, learning_rate, seed, overrides, max_steps, trust_pickle, progress, as_json
    ):
        """Train core's example model (a small MLP on generated spirals) with full checkpointing.

        Checkpoints land in OUTPUT/checkpoints/ (atomic, with manifest), metrics in
        OUTPUT/metrics.jsonl and history.json, the resolved config in OUTPUT/config.yaml.
        """
        from trainer_core.checkpoint.loading import resume_config_path
        from trainer_core.cli.support import echo_json
        from trainer_core.config import load_config
        from trainer_core.example.config import ExampleConfig
        from trainer_core.rundirs import allocate_run_dir

        flags = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed}
        if resume is not None and config_path is None:
            config_path = resume_config_path(resume, LAYOUT.name, LAYOUT.checkpoint_dir)
        config = load_config(ExampleConfig, config_path, flags, overrides)
        if resume is None and output is None:
            output = allocate_run_dir(root)
        from trainer_core.example.trainer import train

        summary = train(
            config,
            output,
            resume=resume,
            max_steps=max_steps,
            trust_pickle=trust_pickle,
            progress=progress,
            pm=click.get_current_context().obj.pm,
        )
        if as_json:
            echo_json(summary)
        else:
            m = summary["metrics"]
            tail = f"val_loss {m['val_loss']:.4f}, val_acc {m['val_acc']:.4f}" if m else "no epoch finished"
            click.echo(f"{summary['status']}: epoch {summary['epoch']}, step {summary['step']}, {tail}; run dir {summary['run_dir']}")
