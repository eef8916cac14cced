"""``core plot RUN_DIR...``: the curves of any run of any package, from its metrics log."""

from __future__ import annotations

from pathlib import Path

import click

from trainer_core.cli.support import echo_json


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--metrics", help="Comma-separated metric names to draw (default: every metric the runs log).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="PNG to write [default: RUN_DIR/metrics.png for one run, runs.png here for several].")
@click.option("--columns", type=click.IntRange(1, 12), default=3, show_default=True, help="Panels per row.")
@click.option("--json", "as_json", is_flag=True, help="Print what was drawn as JSON.")
def plot(run_dirs: tuple[Path, ...], metrics: str | None, output: Path | None, columns: int, as_json: bool) -> None:
    """Plot the metrics of one or more runs: one panel per metric, train and validation apart.

    Reads each run's metrics.jsonl (written by every trainer through core). `train_loss` and
    `val_loss` share the panel `loss`; several runs are overlaid in one colour each.
    """
    from trainer_core.plotting import FIGURE_FILE, find_metrics, plot_runs

    if output is None:
        output = find_metrics(run_dirs[0]).parent / FIGURE_FILE if len(run_dirs) == 1 else Path("runs.png")
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    drawn = plot_runs(run_dirs, output, wanted, columns)
    if as_json:
        echo_json(drawn)
        return
    click.echo(f"wrote {drawn['output']}: {len(drawn['panels'])} panel(s) ({', '.join(p['metric'] for p in drawn['panels'])})")


def add_commands(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(plot)
