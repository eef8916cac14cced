"""The `core` command: list, show, verify across packages, from metadata only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from trainer_core.checkpoint import CheckpointManager, commit_file
from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointInfo, CheckpointLayout
from trainer_core.plugins import get_plugin_manager


def _make(tmp_path):
    a = CheckpointManager(tmp_path / "runA", package="pkg-a", layout="a.train")
    for step in (1, 2, 3):
        a.save({"w.npz": {"w": np.ones(10 * step)}}, step=step, epoch=step, metrics={"val_loss": 1.0 / step})
    commit_file(
        tmp_path / "runB" / "best_model.npz",
        {"w": np.zeros(3)},
        dict(
            package="pkg-b",
            layout="b.best",
            layout_version=1,
            kind="best",
            name="best",
            step=50,
            epoch=5,
            metrics={"acc": 0.9},
            config_hash="h",
            extra={},
        ),
    )
    return tmp_path


class FakePackages:
    """Registers the layouts of the checkpoints `_make` writes, as their packages would."""

    def __init__(self, a_version=1):
        self.a_version = a_version

    @hookimpl
    def register_checkpoint_layouts(self, register):
        register(CheckpointLayout(name="a.train", package="pkg-a", version=self.a_version, headline_metrics=("val_loss",)))
        register(CheckpointLayout(name="b.best", package="pkg-b"))


def test_list_table_json_sort_and_filter(tmp_path, run_core):
    (tmp_path / "runB").mkdir()
    _make(tmp_path)
    run_core = _with(run_core, FakePackages())
    table = run_core("list-checkpoints", tmp_path)
    assert table.exit_code == 0
    assert "pkg-a" in table.stdout and "pkg-b" in table.stdout and "val_loss=0.3333" in table.stdout
    rows = json.loads(run_core("list-checkpoints", tmp_path, "--json", "--sort", "step", "--reverse").stdout)
    assert [r["step"] for r in rows] == [50, 3, 2, 1]
    only_a = json.loads(run_core("list-checkpoints", tmp_path, "--json", "--package", "pkg-a", "--sort", "val_loss").stdout)
    assert [r["step"] for r in only_a] == [3, 2, 1] and all(r["status"] == "ok" for r in only_a)


def _with(run_core, plugin):
    pm = get_plugin_manager(load_entrypoints=False, plugins=[plugin], warn=False)
    return lambda *args: run_core(*args, pm=pm)


def test_listing_says_when_the_plugin_is_missing_or_older(tmp_path, run_core):
    (tmp_path / "runB").mkdir()
    _make(tmp_path)
    statuses = lambda rows: {r["package"]: r["status"] for r in rows}  # noqa: E731
    missing = json.loads(run_core("list-checkpoints", tmp_path, "--json").stdout)
    assert statuses(missing) == {"pkg-a": "no-plugin", "pkg-b": "no-plugin"}
    assert "install pkg-a" in missing[0]["problems"][0] or "install pkg-a" in missing[-1]["problems"][0]
    table = run_core("list-checkpoints", tmp_path)
    assert "no-plugin" in table.stdout and table.exit_code == 0
    # the checkpoints were written at layout v1; an installed plugin at v1 reads them, at v0 it is older
    assert statuses(json.loads(_with(run_core, FakePackages(a_version=1))("list-checkpoints", tmp_path, "--json").stdout))["pkg-a"] == "ok"
    older = json.loads(_with(run_core, FakePackages(a_version=0))("list-checkpoints", tmp_path, "--json").stdout)
    assert statuses(older) == {"pkg-a": "plugin-older", "pkg-b": "ok"}
    assert any("upgrade" in p for r in older for p in r["problems"])


def test_truncated_files_are_corrupt_for_list_and_verify(tmp_path, run_core):
    (tmp_path / "runB").mkdir()
    _make(tmp_path)
    run_core = _with(run_core, FakePackages())
    victim = tmp_path / "runA" / "checkpoint_step_00000002" / "w.npz"
    victim.write_bytes(victim.read_bytes()[:50])
    rows = {os.path.basename(r["path"]): r for r in json.loads(run_core("list-checkpoints", tmp_path, "--json").stdout)}
    assert rows["checkpoint_step_00000002"]["status"] == "corrupt"
    assert rows["checkpoint_step_00000003"]["status"] == "ok"
    result = run_core("verify", tmp_path)
    assert result.exit_code == 1
    bad = [line for line in result.stdout.splitlines() if not line.startswith("ok")]
    assert len(bad) == 1 and "w.npz" in bad[0] and "checkpoint_step_00000002" in bad[0]


def test_unfinished_save_is_listed_incomplete(tmp_path, run_core):
    (tmp_path / ".tmp-checkpoint_step_9-123-abcd").mkdir()
    rows = json.loads(run_core("list-checkpoints", tmp_path, "--json").stdout)
    assert [r["status"] for r in rows] == ["incomplete"]


def test_show_reports_everything_without_weights(tmp_path, run_core):
    (tmp_path / "runB").mkdir()
    _make(tmp_path)
    shown = json.loads(run_core("show", tmp_path / "runB" / "best_model.npz", "--json").stdout)
    assert shown["package"] == "pkg-b" and shown["step"] == 50 and shown["metrics"] == {"acc": 0.9}
    assert shown["files"]["best_model.npz"]["sha256"]
    text = run_core("show", tmp_path / "runA" / "checkpoint_step_00000003")
    assert "val_loss: 0.3333" in text.stdout and "w.npz" in text.stdout


def test_missing_paths_are_one_line_usage_errors(tmp_path, run_core):
    for args in (
        ["list-checkpoints", tmp_path / "nope"],
        ["show", tmp_path / "nope"],
        ["verify", tmp_path / "nope"],
        ["list-checkpoints", "--bogus"],
    ):
        result = run_core(*args)
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")
    (tmp_path / "plain").mkdir()
    result = run_core("show", tmp_path / "plain")
    assert result.exit_code == 2 and "not a checkpoint" in result.output


def test_listing_imports_no_torch_or_jax_and_opens_no_weights(tmp_path):
    (tmp_path / "runB").mkdir()
    _make(tmp_path)
    probe = f"""
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from trainer_core.cli import build_cli
from trainer_core.plugins import get_plugin_manager
try:
    build_cli(get_plugin_manager()).main(["list-checkpoints", {str(tmp_path)!r}, "--json"], prog_name="core")
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = sorted(m for m in ("torch", "jax", "flax", "tensorflow") if m in sys.modules)
weights = [p for p in opened if p.endswith(".npz")]
print("HEAVY", heavy, "WEIGHTS", weights, file=sys.stderr)
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY [] WEIGHTS []" in result.stderr, result.stderr
    assert len(json.loads(result.stdout)) == 4


class LegacyLayout(CheckpointLayout):
    name = "legacy.pkl"
    package = "legacy-pkg"

    def recognise(self, path, is_dir):
        return not is_dir and path.endswith("model_weights.pkl")

    def describe(self, path):
        return CheckpointInfo(path=path, package=self.package, layout=self.name, kind="legacy", size=os.path.getsize(path))


class LegacyPlugin:
    @hookimpl
    def register_checkpoint_layouts(self, register):
        register(LegacyLayout())


def test_a_plugin_layout_claims_files_without_manifest(tmp_path, run_core):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "model_weights.pkl").write_bytes(b"\x80\x04N.")
    pm = get_plugin_manager(load_entrypoints=False, plugins=[LegacyPlugin()], warn=False)
    rows = json.loads(run_core("list-checkpoints", tmp_path, "--json", pm=pm).stdout)
    assert [(r["package"], r["kind"]) for r in rows] == [("legacy-pkg", "legacy")]


def test_core_help_starts_fast_enough_to_be_metadata_only():
    """`core --help` must not import torch or jax (the plugins import them lazily)."""
    probe = "import sys; from trainer_core.cli import build_cli; build_cli(); print(sorted(m for m in ('torch','jax') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_listing_fits_the_terminal_and_groups_runs(tmp_path, core_pm, monkeypatch):
    from trainer_core.testing import run_core as invoke

    long_metrics = {f"metric_with_a_long_name_{i}": 0.123456 * i for i in range(12)}
    nested = {"synthetic": {"AP": 0.91, "AP50": 0.96, "AP75": 0.93, "seconds": 12.0}, "real": {"AP": 0.2, "AP50": 0.28}}
    for run in ("a_run_directory_with_a_rather_long_name_number_one", "second_run"):
        manager = CheckpointManager(tmp_path / run / "checkpoints", package="trainer-core", layout="core.example")
        for step in (1, 2):
            manager.save({"a.json": {}}, step=step, metrics={**long_metrics, "evaluation": nested})
    monkeypatch.setenv("COLUMNS", "100")
    table = invoke(["list-checkpoints", str(tmp_path)], core_pm).stdout
    wide = invoke(["list-checkpoints", str(tmp_path), "--wide"], core_pm).stdout
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert "…" in table and table.count("checkpoint_step_0000000") == 4
    assert sum(1 for line in lines if line == "") == 2  # a blank line before each run's header
    assert max(len(line) for line in wide.splitlines()) > 100 and "…" not in wide


def test_nested_stage_metrics_show_as_a_few_numbers():
    from trainer_core.cli.listing import headline_text
    from trainer_core.layouts import CheckpointInfo

    info = CheckpointInfo(path="x", metrics={"evaluation": {"synthetic": {"AP": 0.9, "AP50": 0.96, "AP75": 0.93, "images": 300}}},
                          headline=("evaluation",))  # fmt: skip
    assert headline_text(info) == "evaluation.synthetic.AP=0.9 evaluation.synthetic.AP50=0.96 evaluation.synthetic.AP75=0.93"


def test_verify_hashes_checks_what_a_layout_recorded_and_refuses_what_it_did_not(tmp_path):
    from trainer_core.checkpoint import verify_hashes
    from trainer_core.checkpoint.atomic import sha256_file

    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(name.encode() * 10)
    recorded = {name: {"size": 50, "sha256": sha256_file(tmp_path / name)} for name in ("a.png", "b.png")}
    good = verify_hashes(CheckpointInfo(path=str(tmp_path), files=dict(recorded)), "its metadata")
    assert good.status == "ok" and good.problems == []
    (tmp_path / "b.png").write_bytes(b"B.png" * 10)
    bad = verify_hashes(CheckpointInfo(path=str(tmp_path), files={**recorded, "c.png": {"size": 50}}), "its metadata")
    assert bad.status == "corrupt"
    assert bad.problems == ["b.png: sha256 differs from its metadata (file changed or damaged)", "c.png: its metadata records no sha256 for it"]
