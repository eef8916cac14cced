"""The run record: ``<run dir>/run.json``, kept by core's own lifecycle and save hooks.

What a researcher (or a script) wants to know about a run without parsing logs: its status
(``running`` while it trains, then ``completed``, ``interrupted``, ``failed``, ``early_stopped``),
when it started and ended, on which host and process, the error that stopped it, each resume (from
which checkpoint, at which step), and its newest committed checkpoint. The file is replaced
atomically at each change, so it is always whole.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

from trainer_core.checkpoint.atomic import atomic_write_json
from trainer_core.hookspecs import hookimpl

RECORD_NAME = "run.json"
_LOCK = threading.Lock()  # after_save runs on the writer thread
_RECORDS: dict[str, dict[str, Any]] = {}
_STARTED: dict[str, float] = {}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _record(run: Any) -> dict[str, Any]:
    key = str(run.run_dir)
    if key not in _RECORDS:
        previous = _read(os.path.join(key, RECORD_NAME))
        _RECORDS[key] = {
            "package": run.package,
            "config_hash": run.config_hash,
            "status": "created",
            "checkpoints_committed": previous.get("checkpoints_committed", 0),
            "resumes": previous.get("resumes", []),
        }
    return _RECORDS[key]


def _read(path: str) -> dict[str, Any]:
    import json

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(run: Any) -> None:
    atomic_write_json(os.path.join(str(run.run_dir), RECORD_NAME), _RECORDS[str(run.run_dir)])


@hookimpl
def on_train_start(run):
    """Mark the run ``running`` with its start time, host and process id."""
    with _LOCK:
        record = _record(run)
        record.update(status="running", started=_now(), ended=None, error=None, host=socket.gethostname(), pid=os.getpid())
        _STARTED[str(run.run_dir)] = time.monotonic()
        _write(run)


@hookimpl
def on_resume(run, checkpoint):
    """Append the checkpoint this run continues from (path and step)."""
    with _LOCK:
        _record(run)["resumes"].append({"from": checkpoint.path, "step": checkpoint.step, "at": _now()})
        _write(run)


@hookimpl
def before_save(run, name, step):
    """Put the seconds the run has trained in this process into the manifest's ``extra``."""
    started = _STARTED.get(str(run.run_dir)) if run is not None else None
    return {"elapsed_seconds": round(time.monotonic() - started, 3)} if started is not None else None


@hookimpl
def after_save(run, checkpoint):
    """Record the newest committed checkpoint and count them."""
    if run is None:
        return
    with _LOCK:
        record = _record(run)
        record["last_checkpoint"] = {"path": checkpoint.path, "step": checkpoint.step, "epoch": checkpoint.epoch}
        record["checkpoints_committed"] = record.get("checkpoints_committed", 0) + 1
        _write(run)


@hookimpl
def on_train_error(run, error):
    """Keep the error that stopped the run, in one line."""
    with _LOCK:
        _record(run)["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
        _write(run)


@hookimpl
def on_train_end(run, status):
    """Final status and end time; the run's entry is then forgotten by this process."""
    with _LOCK:
        record = _record(run)
        record.update(status=status, ended=_now())
        _write(run)
        _RECORDS.pop(str(run.run_dir), None)
        _STARTED.pop(str(run.run_dir), None)
