"""Stage cache: skip pipeline stages whose config and outputs have not changed.

Each stage keeps ``<directory>/<stage>.json`` with its timestamp, config hash, metrics and the
outputs it produced. A stage is redone when its config hash changed, when any recorded output is
missing or fails validation, when it was reset, or when forced — and only then.

Output references (``outputs`` list items):

* ``{"type": "file", "path": P}``: exists; ``size``/``sha256`` recorded and re-checked;
* ``{"type": "dir", "path": P, "pattern": "*.png", "count": N}``: at least N matching files;
* ``{"type": "json_count", "path": P, "key": "annotations", "count": N}``: a JSON file whose list
  under ``key`` has N items;
* ``{"type": "checkpoint", "path": P}``: a core checkpoint whose files match their manifest.

Extra checks (e.g. "the weights load") are callables given to :meth:`StageCache.check`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainer_core.checkpoint.atomic import atomic_write_json, sha256_file
from trainer_core.errors import UsageError

STATUS_FORMAT = "trainer-core/stage"


@dataclass
class StageCheck:
    fresh: bool
    reason: str
    record: dict[str, Any] | None = field(default=None)


def file_output(path: str | os.PathLike, *, hash_contents: bool = True) -> dict[str, Any]:
    path = Path(path)
    out: dict[str, Any] = {"type": "file", "path": str(path), "size": path.stat().st_size}
    if hash_contents:
        out["sha256"] = sha256_file(path)
    return out


def dir_output(path: str | os.PathLike, pattern: str = "*") -> dict[str, Any]:
    return {"type": "dir", "path": str(path), "pattern": pattern, "count": sum(1 for _ in Path(path).glob(pattern))}


def json_count_output(path: str | os.PathLike, key: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return {"type": "json_count", "path": str(path), "key": key, "count": len(json.load(f)[key])}


def checkpoint_output(path: str | os.PathLike) -> dict[str, Any]:
    return {"type": "checkpoint", "path": str(path)}


def validate_output(ref: dict[str, Any], base: Path) -> str | None:
    """None if the referenced output is intact, else a one-line reason."""
    path = Path(ref["path"])
    path = path if path.is_absolute() else base / path
    kind = ref.get("type")
    if not path.exists():
        return f"output {path} is missing"
    if kind == "file":
        if "size" in ref and path.stat().st_size != ref["size"]:
            return f"output {path} changed size"
        if "sha256" in ref and sha256_file(path) != ref["sha256"]:
            return f"output {path} changed contents"
    elif kind == "dir":
        count = sum(1 for _ in path.glob(ref.get("pattern", "*")))
        if count < ref.get("count", 0):
            return f"output {path} has {count} files matching {ref.get('pattern', '*')}, expected {ref['count']}"
    elif kind == "json_count":
        try:
            with open(path, encoding="utf-8") as f:
                count = len(json.load(f)[ref["key"]])
        except (ValueError, KeyError, TypeError):
            return f"output {path} is not valid JSON with a '{ref['key']}' list"
        if count != ref["count"]:
            return f"output {path} has {count} {ref['key']}, expected {ref['count']}"
    elif kind == "checkpoint":
        from trainer_core.checkpoint import verify_checkpoint

        info = verify_checkpoint(path)
        if info.status != "ok":
            return f"checkpoint {path} is {info.status}: {'; '.join(info.problems)}"
    else:
        return f"unknown output type {kind!r}"
    return None


MARKER = ".stage-cache"  # an empty file beside the status files: listing recognises them by a stat, whatever the folder is called


class StageCache:
    """Status files of a pipeline's stages in ``directory`` (e.g. ``checkpoints/``)."""

    def __init__(self, directory: str | os.PathLike, *, package: str | None = None, base: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory)
        self.package = package
        self.base = Path(base) if base is not None else Path.cwd()

    def path(self, stage: str) -> Path:
        if not stage.replace("_", "").replace("-", "").isalnum():
            raise UsageError(f"invalid stage name {stage!r}: use letters, digits, '_' and '-'")
        return self.directory / f"{stage}.json"

    def record(self, stage: str) -> dict[str, Any] | None:
        try:
            with open(self.path(stage), encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            return {"corrupt": True}
        return data if isinstance(data, dict) else {"corrupt": True}

    def check(self, stage: str, config_hash: str, validators: Iterable[Callable[[dict[str, Any]], str | None]] = ()) -> StageCheck:
        """Is ``stage`` done for this config with intact outputs? Says why not."""
        record = self.record(stage)
        if record is None:
            return StageCheck(False, "never run")
        if record.get("corrupt") or record.get("format") != STATUS_FORMAT:
            return StageCheck(False, f"status file {self.path(stage)} is unreadable")
        if record.get("status") != "completed":
            return StageCheck(False, f"last run {record.get('status', 'did not finish')}", record)
        if record.get("config_hash") != config_hash:
            return StageCheck(False, "config changed", record)
        for ref in record.get("outputs", []):
            problem = validate_output(ref, self.base)
            if problem:
                return StageCheck(False, problem, record)
        for validator in validators:
            problem = validator(record)
            if problem:
                return StageCheck(False, problem, record)
        return StageCheck(True, "up to date", record)

    def complete(
        self,
        stage: str,
        config_hash: str,
        *,
        metrics: dict[str, Any] | None = None,
        outputs: Iterable[dict[str, Any]] = (),
        started: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = time.time()
        record = {
            "format": STATUS_FORMAT,
            "stage": stage,
            "package": self.package,
            "status": "completed",
            "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "duration_s": round(now - started, 3) if started else None,
            "config_hash": config_hash,
            "metrics": metrics or {},
            "outputs": list(outputs),
            **(extra or {}),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / MARKER).touch()
        atomic_write_json(self.path(stage), record)
        return record

    def reset(self, stage: str | None = None) -> list[str]:
        """Forget one stage (or all); their outputs are left on disk. Returns what was reset."""
        names = [stage] if stage else self.stages()
        done = []
        for name in names:
            try:
                self.path(name).unlink()
                done.append(name)
            except FileNotFoundError:
                pass
        return done

    def stages(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.json") if (self.record(p.stem) or {}).get("format") == STATUS_FORMAT)

    def run(
        self,
        stage: str,
        config_hash: str,
        fn: Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]],
        *,
        force: bool = False,
        validators: Iterable[Callable[[dict[str, Any]], str | None]] = (),
    ) -> tuple[dict[str, Any], bool]:
        """Run ``fn`` (returning ``(metrics, outputs)``) unless the stage is fresh.

        Returns ``(record, ran)``.
        """
        if not force:
            check = self.check(stage, config_hash, validators)
            if check.fresh:
                return check.record or {}, False
        started = time.time()
        metrics, outputs = fn()
        return self.complete(stage, config_hash, metrics=metrics, outputs=outputs, started=started), True
