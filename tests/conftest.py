"""Shared fixtures for every package's tests."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

# xdist's workers share the machine's cores: each gets its share of OpenMP/MKL threads, and the
# subprocesses a test starts inherit it. Left at torch's default (every core per worker), the
# workers' thread pools fight over the cores and the suite ran 1.5x slower on 2 cores
# (898 s against 608 s, `pytest -n 2`, one run each, 2026-12-08).
if "PYTEST_XDIST_WORKER" in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _threads = str(max(1, _cores // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, _threads)
    if "torch" in sys.modules:  # a plugin imported torch before the variables were set
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture
def core_pm():
    """A fresh plugin manager with core's default plugins only (no installed entry points)."""
    from trainer_core.plugins import get_plugin_manager

    return get_plugin_manager(load_entrypoints=False, warn=False)


@pytest.fixture
def run_core(core_pm):
    """Run ``core`` in-process against ``core_pm``: ``run_core("list-checkpoints", path)``."""
    from trainer_core.testing import run_core as _run

    def invoke(*args: str, pm=None):
        return _run([str(a) for a in args], pm if pm is not None else core_pm)

    return invoke


@pytest.fixture
def torchrun_env(tmp_path):
    """The environment for a ``torchrun`` subprocess: one thread per rank (two ranks share the
    2 cores) and TMPDIR under the test's tmp_path, where torchelastic writes its per-run folders
    (it leaves them behind in /tmp otherwise)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)}


# --- the fuzz suite's case counts in the closing lines (tests/integration/test_fuzz_bad_inputs.py) ---
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


# --- object storage: moto's S3 server on 127.0.0.1, one per test process ---
@pytest.fixture(scope="session")
def s3_server():
    """A local S3 server (moto[server]); skipped with the reason when moto is not installed."""
    import importlib.util

    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("s3fs") is None:
        pytest.skip("moto[server] and s3fs are not installed: `make install` installs them")
    from trainer_core.testing import LocalS3Server

    with LocalS3Server() as server:
        yield server


@pytest.fixture
def s3_root(s3_server, monkeypatch, tmp_path):
    """A fresh bucket, ``s3://<bucket>``, with s3fs pointed at the local server as a user would
    (AWS_ENDPOINT_URL and credentials in the environment); remote runs' mirrors under tmp_path."""
    import uuid

    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRAINER_CORE_CACHE", str(tmp_path / "cache"))
    return s3_server.create_bucket(f"test-{uuid.uuid4().hex[:12]}")
