"""Each hookspec has a real implementer in this repo, driven by a test named ``test_hook_<name>``.

The meta-test at the top fails when a hook gains no such test (datasette's
``test_plugin_hooks_have_tests``); tests/integration/test_all_plugins.py checks that the installed
packages implement every hook. Core's implementers are its default plugins: sinks, the example
trainer, the stage layout and the run record (``run.json``); the visualization hooks are
vizwatch's (tests/vizwatch/test_plugin.py).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from trainer_core import hookspecs
from trainer_core.plugins import collect_registry

HOOKS = sorted(name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "trainer_core_spec"))
TESTS = Path(__file__).resolve().parents[1]


def test_every_hookspec_has_a_test_hook_named_after_it():
    sources = "".join(p.read_text() for p in TESTS.rglob("test_*.py"))
    missing = [name for name in HOOKS if f"def test_hook_{name}" not in sources]
    assert not missing, f"hooks without a test_hook_<name>: {missing}"


def test_hook_register_checkpoint_layouts(core_pm):
    registry = collect_registry(core_pm)
    assert {"core.example", "core.stage"} <= set(registry.layouts)
    assert registry.owners[("layout", "core.example")] == "trainer_core.default_plugins.example"


def test_hook_register_config_schemas(core_pm):
    schema = collect_registry(core_pm).schemas["core.example"]
    assert schema.model().epochs == 20


def test_hook_register_metric_sinks(core_pm):
    sinks = collect_registry(core_pm).sinks
    assert {"jsonl", "console"} <= set(sinks)


def test_hook_register_commands(run_core):
    result = run_core("example-train", "--help")
    assert result.exit_code == 0 and "--resume" in result.stdout


@pytest.fixture
def example_run(tmp_path, core_pm):
    pytest.importorskip("torch")
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    config = ExampleConfig(epochs=2, samples=300, batch_size=60, async_save=False)
    train(config, tmp_path, pm=core_pm, progress=False, max_steps=5)
    first = json.loads((tmp_path / "run.json").read_text())
    train(config, resume=tmp_path, pm=core_pm, progress=False)
    return tmp_path, first, json.loads((tmp_path / "run.json").read_text())


def test_hook_on_train_start(example_run):
    _, first, final = example_run
    assert first["started"] and first["pid"] and first["host"] and first["package"] == "trainer-core"
    assert final["started"] >= first["started"]


def test_hook_on_train_end(example_run):
    _, first, final = example_run
    assert first["status"] == "interrupted" and final["status"] == "completed" and final["ended"]


def test_hook_on_resume(example_run):
    run_dir, _, final = example_run
    (resume,) = final["resumes"]
    assert resume["step"] == 4 and Path(resume["from"]).parent == run_dir / "checkpoints"


def test_hook_before_save(example_run):
    run_dir, _, final = example_run
    manifest = json.loads((Path(final["last_checkpoint"]["path"]) / "manifest.json").read_text())
    assert manifest["extra"]["elapsed_seconds"] >= 0


def test_hook_after_save(example_run):
    run_dir, first, final = example_run
    # 4 steps an epoch: the first call commits epoch 1 (step 4) and stops at step 5; the resumed one commits epoch 2
    assert first["checkpoints_committed"] == 1 and final["checkpoints_committed"] == 2
    assert final["last_checkpoint"]["step"] == 8 and Path(final["last_checkpoint"]["path"]).is_dir()


def test_hook_on_train_error(tmp_path, core_pm):
    from trainer_core import CheckpointLayout, TrainingRun

    with pytest.raises(RuntimeError), TrainingRun({"seed": 0}, layout=CheckpointLayout(name="x.y", package="x"), run_dir=tmp_path, pm=core_pm):
        raise RuntimeError("the data loader died\nsecond line")
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "RuntimeError: the data loader died"
