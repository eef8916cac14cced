"""The fuzz suite's case counts in the session's closing lines (also under pytest-xdist, where the
cases run in a worker: it leaves its counts in a file named by the controlling process's pid)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest


def fuzz_summary_file(controller_pid: int | None = None) -> Path:
    if controller_pid is None:
        controller_pid = os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid()
    return Path(tempfile.gettempdir()) / f"trainers-fuzz-summary-{controller_pid}.json"


def record_fuzz(kind: str, cases: int, failed: int) -> None:
    path = fuzz_summary_file()
    data = json.loads(path.read_text()) if path.exists() else {}
    data[kind] = {"cases": cases, "failed": failed}
    path.write_text(json.dumps(data))


@pytest.fixture
def fuzz_report():
    """``fuzz_report(kind, cases, failed)``: counts for the closing lines."""
    return record_fuzz


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = fuzz_summary_file(os.getpid())
    if not path.exists():
        return
    data = json.loads(path.read_text())
    path.unlink()
    parts = [f"{v['cases']} {k} ({v['failed']} failed)" for k, v in sorted(data.items())]
    terminalreporter.write_line("fuzz: " + ", ".join(parts))
