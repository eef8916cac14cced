"""``core list-checkpoints``, ``show``, ``verify`` and ``prune``: checkpoints of every package, from metadata."""

from __future__ import annotations

import os
from typing import Any

import click

from trainer_core.cli.context import CoreContext
from trainer_core.cli.listing import display_path, render_listing
from trainer_core.cli.support import echo_json, format_value, human_size
from trainer_core.errors import CheckpointError, UsageError
from trainer_core.layouts import CheckpointInfo

SORT_FIELDS = ("path", "package", "kind", "step", "epoch", "size", "modified", "status")


def _sort_key(field: str):
    if field in SORT_FIELDS:

        def key(c: CheckpointInfo) -> Any:
            value = getattr(c, field)
            return (value is None, value if value is not None else 0)

        return key

    def metric_key(c: CheckpointInfo) -> Any:
        value = c.metrics.get(field)
        return (not isinstance(value, (int, float)), value if isinstance(value, (int, float)) else 0)

    return metric_key


@click.command("list-checkpoints")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--package", "-p", help="Only checkpoints of this package (e.g. spinlock-vqvae).")
@click.option(
    "--sort", "sort_field", default="path", show_default=True,
    help=f"Order within each run: one of {', '.join(SORT_FIELDS)} or a metric name.",
)  # fmt: skip
@click.option("--reverse", is_flag=True, help="Reverse the order (e.g. --sort step --reverse: newest first).")
@click.option("--wide", is_flag=True, help="Print every cell whole instead of fitting the terminal's width.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_obj
def list_checkpoints(
    obj: CoreContext, paths: tuple[str, ...], package: str | None, sort_field: str, reverse: bool, wide: bool, as_json: bool
) -> None:
    """List checkpoints under PATHS (default: the current directory), across packages.

    Reads manifests only: nothing is loaded or unpickled. Rows are grouped by run (the folder
    holding them); the table fits the terminal (COLUMNS), cutting long metrics with an ellipsis.
    Status is ok, incomplete (a save that never finished), corrupt (files missing or of the
    wrong size; run `core verify` for a full hash check) or unverified (no manifest to check).
    """
    import shutil
    import sys

    from trainer_core.checkpoint.discovery import find_checkpoints

    found = find_checkpoints(paths or (".",), obj.registry.layouts, package, check_plugins=True)
    obj.warn_problems()
    found.sort(key=_sort_key(sort_field), reverse=reverse)
    if as_json:
        echo_json([c.to_json() for c in found])
        return
    if not found:
        click.echo(f"no checkpoints found under {', '.join(paths or ('.',))}", err=True)
        return
    fitted = not wide and (sys.stdout.isatty() or "COLUMNS" in os.environ)  # piped to a file or grep: every cell whole
    width = shutil.get_terminal_size((100, 24)).columns if fitted else None
    click.echo(render_listing(found, _sort_key(sort_field), reverse, width))
    bad = sum(c.status != "ok" for c in found)
    click.echo(f"{len(found)} checkpoint(s)" + (f", {bad} not ok (see `core show PATH`)" if bad else ""), err=True)

@click.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: CoreContext, path: str, as_json: bool) -> None:
    """Everything known about one checkpoint, without loading its weights."""
    from trainer_core.checkpoint.discovery import describe_path

    info = describe_path(path, obj.registry.layouts)
    if as_json:
        echo_json(info.to_json())
        if info.status != "ok":
            raise click.exceptions.Exit(1)
        return
    click.echo(f"path:         {info.path}")
    model = info.extra.get("model") if isinstance(info.extra.get("model"), dict) else {}
    for label, value in (
        ("package", info.package),
        ("layout", info.layout if info.layout_version is None else f"{info.layout} v{info.layout_version}"),
        ("model", f"{model['name']} ({model.get('parameters', 0):,} parameters)" if model.get("name") else None),
        ("kind", info.kind),
        ("epoch", info.epoch),
        ("step", info.step),
        ("status", info.status),
        ("size", human_size(info.size)),
        ("created", info.created),
        ("config hash", info.config_hash),
    ):
        click.echo(f"{label + ':':<13} {'-' if value is None else value}")
    for problem in info.problems:
        click.echo(f"problem:      {problem}")
    if info.metrics:
        click.echo("metrics:")
        for k, v in info.metrics.items():
            click.echo(f"  {k}: {format_value(v)}")
    if info.files:
        click.echo("files:")
        for name, entry in info.files.items():
            click.echo(f"  {name}  {human_size(entry.get('size'))}  sha256 {str(entry.get('sha256'))[:16]}…")
    if info.library_versions:
        click.echo("libraries:    " + ", ".join(f"{k} {v}" for k, v in info.library_versions.items()))
    if info.extra:
        click.echo("extra:")
        for k, v in info.extra.items():
            if k != "model":
                click.echo(f"  {k}: {v}")
    if info.status != "ok":
        raise CheckpointError(f"{display_path(info.path)} is {info.status}: {'; '.join(info.problems) or 'not a complete checkpoint'}")

@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def verify(ctx: click.Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Check sizes and sha256 of every file against the manifest; exit 1 if any is bad.

    A directory that is not itself a checkpoint is searched for checkpoints. A layout's own
    folder without a manifest (a vizwatch picture run) is checked against the hashes its
    metadata records; one that records none is reported unverified (exit 1).
    """
    from trainer_core.checkpoint import verify_checkpoint, verify_hashes
    from trainer_core.checkpoint.discovery import find_checkpoints

    results = []
    for path in paths:
        for found in find_checkpoints([path], ctx.obj.registry.layouts):
            if found.manifest_path:
                results.append(verify_checkpoint(found.path))
            else:  # a layout's own folder: its recorded hashes, where it keeps any
                results.append(verify_hashes(found, "its metadata") if found.status == "ok" else found)
    if as_json:
        echo_json([{"path": r.path, "status": r.status, "problems": r.problems} for r in results])
    else:
        for r in results:
            if r.status == "ok":
                click.echo(f"ok       {display_path(r.path)}")
            else:
                for problem in r.problems or ["not a complete checkpoint"]:
                    click.echo(f"{r.status:<8} {display_path(r.path)}: {problem}")
    if not results:
        raise UsageError(f"no checkpoints found under {', '.join(paths)}")
    bad = [r for r in results if r.status != "ok"]
    if bad:
        if not as_json:
            click.echo(f"error: {len(bad)} of {len(results)} checkpoint(s) failed verification", err=True)
        ctx.exit(1)

@click.command()
@click.argument("path")
@click.option("--keep-last", type=click.IntRange(min=0), default=None, help="Keep the N most recent (by recorded step).")
@click.option("--keep-best", type=click.IntRange(min=0), default=0, show_default=True, help="Keep the K best by --metric.")
@click.option("--metric", help="Metric to rank by, or a combination like 'recon + 0.1*ortho'.")
@click.option("--mode", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option("--protect", multiple=True, type=click.Path(), help="A checkpoint never to delete (repeatable).")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def prune(
    path: str,
    keep_last: int | None,
    keep_best: int,
    metric: str | None,
    mode: str,
    protect: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete old checkpoints directly inside PATH (one run directory, or a URL).

    The newest and the best checkpoint are always kept; only checkpoints written by core
    (with a manifest) are ever deleted, and nothing outside PATH is touched. Every checkpoint
    kept is re-hashed first: a corrupt one never counts as kept (the next one is kept instead)
    and is left in place. On object storage (s3://...) prune also removes data that no manifest
    names (saves that died or were replaced) once older than TRAINER_CORE_REMOTE_GRACE seconds.
    """
    from trainer_core.checkpoint import delete_checkpoint, list_committed, verify_checkpoint
    from trainer_core.checkpoint.retention import RetentionPolicy, plan_deletion

    if keep_last is None and not keep_best:
        raise UsageError("say what to keep: --keep-last N and/or --keep-best K --metric NAME")
    from trainer_core import storage
    from trainer_core.checkpoint.remote import collect_garbage

    if not storage.is_url(path) and not os.path.isdir(path):
        raise UsageError(f"no such directory: {path} (give a run directory or its checkpoints folder)")
    policy = RetentionPolicy(
        keep_last=keep_last, keep_best=keep_best, metric=metric, mode=mode, protected={storage.absolute(p) for p in protect}
    )
    committed = list_committed(path)
    garbage = collect_garbage(path, dry_run=dry_run) if storage.is_url(path) else []
    doomed, corrupt = plan_deletion(policy, committed, lambda c: verify_checkpoint(c.path).status == "ok")
    gone = {c.path for c in doomed} | {c.path for c in corrupt}
    kept = [c for c in committed if c.status == "ok" and c.path not in gone]
    if not dry_run:
        for info in doomed:
            delete_checkpoint(info)
    if as_json:
        echo_json(
            {
                "deleted" if not dry_run else "would_delete": [c.path for c in doomed],
                "kept": [c.path for c in kept],
                "corrupt": [c.path for c in corrupt],
                "unreferenced_data": garbage,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    for info in doomed:
        click.echo(f"{verb}  {display_path(info.path)}  (step {info.step})")
    for info in corrupt:
        click.echo(f"corrupt  {display_path(info.path)}  (step {info.step}): not counted as kept, left in place (see `core verify`)", err=True)
    for url in garbage:
        click.echo(f"{verb}  {url}  (data no manifest names)")
    click.echo(f"{verb} {len(doomed)}, kept {len(kept)}" + (f", {len(corrupt)} corrupt left in place" if corrupt else "")
               + (f", {len(garbage)} unreferenced data prefix(es)" if garbage else ""), err=True)  # fmt: skip


def add_commands(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(list_checkpoints)
    cli.add_command(show)
    cli.add_command(verify)
    cli.add_command(prune)
