"""Contract test kit for plugin authors: the same round trip for every registered layout.

In a package's tests::

    from trainer_core.testing import assert_checkpoint_contract

    def test_my_layout(tmp_path):
        path = write_a_checkpoint_with_my_trainer(tmp_path)
        assert_checkpoint_contract(path, layout="mypkg.training", tmp_path=tmp_path)

It checks: the layout is registered; ``core list-checkpoints`` finds the checkpoint with status
ok; ``core show --json`` describes it; ``core verify`` passes; it loads safely; and a truncated
copy is reported corrupt by both list and verify (exit 1, naming the file).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from trainer_core.checkpoint import load_checkpoint
from trainer_core.plugins import collect_registry, get_plugin_manager


def run_core(args: list[str], pm: Any = None) -> Any:
    """Run the ``core`` command in-process (click's CliRunner); returns the click Result."""
    from click.testing import CliRunner

    from trainer_core.cli import build_cli

    return CliRunner().invoke(build_cli(pm if pm is not None else get_plugin_manager(warn=False)), args, catch_exceptions=False)


def assert_checkpoint_contract(path: str | os.PathLike, *, layout: str, tmp_path: str | os.PathLike, pm: Any = None) -> None:
    pm = pm if pm is not None else get_plugin_manager(warn=False)
    registry = collect_registry(pm)
    assert layout in registry.layouts, f"layout {layout!r} is not registered (have {sorted(registry.layouts)})"
    path = os.path.abspath(path)

    listed = run_core(["list-checkpoints", path, "--json"], pm)
    assert listed.exit_code == 0, listed.output
    entries = [e for e in json.loads(listed.stdout) if e["path"] == path]
    assert entries, f"core list-checkpoints did not find {path}"
    assert entries[0]["status"] == "ok", entries[0]["problems"]
    assert entries[0]["layout"] == layout

    shown = run_core(["show", path, "--json"], pm)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["layout"] == layout

    verified = run_core(["verify", path], pm)
    assert verified.exit_code == 0, verified.output

    loaded = load_checkpoint(path)
    assert set(loaded.files) == set(entries[0]["files"])

    # a truncated copy must be reported corrupt, naming the file
    copy = Path(tmp_path) / "contract-truncated" / os.path.basename(path)
    copy.parent.mkdir(parents=True, exist_ok=True)
    if os.path.isdir(path):
        shutil.copytree(path, copy)
        base = copy
    else:
        shutil.copy2(path, copy)
        shutil.copy2(path + ".manifest.json", str(copy) + ".manifest.json")
        base = copy.parent
    victim = max(entries[0]["files"], key=lambda n: entries[0]["files"][n]["size"])
    with open(base / victim, "r+b") as f:
        f.truncate(max(0, entries[0]["files"][victim]["size"] // 2))
    listed = run_core(["list-checkpoints", str(copy), "--json"], pm)
    assert json.loads(listed.stdout)[0]["status"] == "corrupt"
    verified = run_core(["verify", str(copy)], pm)
    assert verified.exit_code == 1 and victim in verified.output, verified.output


def assert_plugin_registered(distribution: str, layouts: list[str]) -> None:
    """The distribution's `trainer_core` entry point loads and registers exactly ``layouts``."""
    from importlib import metadata

    entries = [ep for ep in metadata.entry_points(group="trainer_core") if ep.dist is not None and ep.dist.name == distribution]
    assert len(entries) == 1, f"{distribution} should expose one `trainer_core` entry point, found {entries}"
    name = entries[0].name
    pm = get_plugin_manager(warn=False)
    assert pm.has_plugin(name) and name not in pm.failures, pm.failures.get(name)
    registry = collect_registry(pm).collect_all()
    owned = sorted(item for (kind, item), owner in registry.owners.items() if owner == name and kind == "layout")
    assert owned == sorted(layouts)
    assert all(registry.layouts[item].package == distribution for item in owned)


def assert_light_import(module: str, heavy: tuple[str, ...] = ("torch", "jax")) -> None:
    """Importing ``module`` in a fresh interpreter loads none of ``heavy`` (fast CLI start)."""
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"importing {module} loads {loaded}"


class LocalS3Server:
    """moto's standalone S3 server on 127.0.0.1 (``pip install 'moto[server]'``), for tests and
    benchmarks of object-storage roots. ``env`` holds what a user sets to point s3fs at it.

    ::

        with LocalS3Server() as server:
            os.environ.update(server.env)
            server.create_bucket("ckpts")
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.process: Any = None

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self, timeout_s: float = 60.0) -> LocalS3Server:
        import socket
        import subprocess
        import sys
        import time
        import urllib.request

        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("moto's S3 server exited at start: is moto[server] installed?")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto's S3 server did not answer on {self.endpoint} within {timeout_s:.0f} s")

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name``; returns ``s3://name``."""
        import json
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        request.add_header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already there
                raise RuntimeError(f"cannot create bucket {name}: {exc} {json.dumps(exc.reason)}") from None
        return f"s3://{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.process.kill()
        self.process = None
