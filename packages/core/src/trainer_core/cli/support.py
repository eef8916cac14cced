"""What every package's command line shares: error handling, tables, sizes.

:class:`TrainerGroup` turns a :class:`~trainer_core.errors.TrainerCoreError` or a click usage
error into one line on stderr (``error: ...``) and its exit code (2 for usage), never a
traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import click

from trainer_core.errors import TrainerCoreError


class FiniteFloatRange(click.FloatRange):
    """A float option that refuses inf and nan (``click.FloatRange`` lets nan through every bound)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        """The bounds for --help (click's own shows ``x<=None`` when there are none)."""
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()


def seed_spellings(args: Sequence[str]) -> list[str]:
    """The original projects' habits: ``--batch_size 8`` is ``--batch-size 8`` (and
    ``--viz_every=5`` is ``--viz-every=5``). Only option names change, never values; ``--`` ends it."""
    out: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return out + list(args[index:])
        if arg.startswith("--") and "_" in arg.partition("=")[0]:
            name, eq, value = arg.partition("=")
            arg = name.replace("_", "-") + eq + value
        out.append(arg)
    return out


class TrainerGroup(click.Group):
    """A click group whose errors are one clear line and an exit code.

    It accepts the seeds' spellings: underscores in option names (:func:`seed_spellings`; ``--help``
    shows the hyphen form only) and, through ``legacy_forms``, a script's flag that named a
    command (``{"--status": "status"}``: ``detector --status``); ``legacy_default`` is the command
    that options given without one belong to (the seed's one-script interface)."""

    legacy_forms: dict[str, str] = {}
    legacy_default: str | None = None

    def _translate(self, args: Sequence[str]) -> list[str]:
        args = seed_spellings(args)
        if args and args[0] in self.legacy_forms:
            return [self.legacy_forms[args[0]], *args[1:]]
        if self.legacy_default and args and args[0].startswith("--") and args[0] not in ("--help", "-h", "--version"):
            return [self.legacy_default, *args]
        return args

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        args = self._translate(sys.argv[1:] if args is None else args)
        try:
            with _rank_zero_speaks():
                code = super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else (prog_name or self.name)
            click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except TrainerCoreError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except OSError as exc:
            click.echo(f"error: {describe_os_error(exc)}", err=True)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
            if os.environ.get("TRAINER_CORE_DEBUG"):
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {exc} (a bug: please report it; TRAINER_CORE_DEBUG=1 shows the traceback)", err=True
            )
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


_OS_FIXES = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EFBIG: "the file system refuses a file this large: write elsewhere",
    errno.EROFS: "the file system is read-only: give a writable directory",
    errno.EACCES: "check its permissions, or give another path",
    errno.EPERM: "check its permissions, or give another path",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file, not a directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EEXIST: "it already exists: remove it or choose another name",
}


def describe_os_error(exc: OSError) -> str:
    """``<path>: <ERRNO> (<what it means>); <the fix>`` for any failed file operation."""
    code = exc.errno
    name = errno.errorcode.get(code, "error") if code is not None else type(exc).__name__
    where = exc.filename if exc.filename is not None else "a file operation"
    reason = exc.strerror or str(exc)
    fix = _OS_FIXES.get(code, "check the path and the disk") if code is not None else "check the path and the disk"
    return f"{where}: {name} ({reason}); {fix}"


def human_size(size: int | float | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def human_time(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def echo_json(data: Any) -> None:
    """Indented for people; long lists compact (the C encoder), e.g. 10,000 checkpoints."""
    indent = None if isinstance(data, list) and len(data) > 500 else 2
    click.echo(json.dumps(data, indent=indent, default=str))


@contextlib.contextmanager
def _rank_zero_speaks() -> Iterator[None]:
    """Under torchrun, ranks other than 0 print nothing on stdout (the summary, the table and the
    JSON come once, from rank 0); their errors still reach stderr."""
    if int(os.environ.get("RANK", "0") or 0) > 0 and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            yield
    else:
        yield
