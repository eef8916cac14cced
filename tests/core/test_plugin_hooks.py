"""Plugins: every hook fires when it should; broken plugins are skipped; each hook is documented."""

from __future__ import annotations

import inspect
import sys
import types

import pytest

from trainer_core import hookspecs
from trainer_core.hookspecs import hookimpl
from trainer_core.plugins import get_plugin_manager

HOOKS = sorted(name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "trainer_core_spec"))


def test_every_hook_has_a_docstring():
    assert len(HOOKS) >= 13
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def on_train_start(self, run):
        self.calls.append(("on_train_start", run.resumed_from is not None))

    @hookimpl
    def on_resume(self, run, checkpoint):
        self.calls.append(("on_resume", checkpoint.step))

    @hookimpl
    def before_save(self, name, step):
        self.calls.append(("before_save", step))
        return {"recorded_by": "recorder"}

    @hookimpl
    def after_save(self, checkpoint):
        self.calls.append(("after_save", checkpoint.step, checkpoint.extra.get("recorded_by")))

    @hookimpl
    def on_train_end(self, run, status):
        self.calls.append(("on_train_end", status))

    @hookimpl
    def on_train_error(self, run, error):
        self.calls.append(("on_train_error", type(error).__name__))

    @hookimpl
    def visualize_epoch_end(self, event):
        self.calls.append(("visualize_epoch_end", event.epoch, event.splits["val"].embeddings.shape[0], event.run_dir.exists()))

    @hookimpl
    def visualize_checkpoint(self, event, checkpoint):
        self.calls.append(("visualize_checkpoint", checkpoint.step))


def test_lifecycle_and_visualization_hooks_fire_in_order(tmp_path):
    pytest.importorskip("torch")
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    recorder = Recorder()
    pm = get_plugin_manager(load_entrypoints=False, plugins=[recorder], warn=False)
    config = ExampleConfig(epochs=2, samples=300, batch_size=60, async_save=False)
    train(config, tmp_path, pm=pm, progress=False, max_steps=5)
    train(config, resume=tmp_path, pm=pm, progress=False)
    names = [c[0] for c in recorder.calls]
    assert names[:6] == ["on_train_start", "before_save", "after_save", "visualize_checkpoint", "visualize_epoch_end", "on_train_end"]
    assert ("after_save", 4, "recorder") in recorder.calls
    assert ("visualize_epoch_end", 1, 60, True) in recorder.calls
    assert recorder.calls[6] == ("on_resume", 4) and recorder.calls[7] == ("on_train_start", True)
    assert recorder.calls[-1] == ("on_train_end", "completed") and recorder.calls[5] == ("on_train_end", "interrupted")


def test_on_train_error_fires_before_failed_end(tmp_path):
    pytest.importorskip("torch")
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    recorder = Recorder()
    pm = get_plugin_manager(load_entrypoints=False, plugins=[recorder], warn=False)

    def boom(step):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        train(ExampleConfig(epochs=1, samples=300), tmp_path, pm=pm, progress=False, on_step=boom)
    assert recorder.calls[-2:] == [("on_train_error", "RuntimeError"), ("on_train_end", "failed")]


def test_register_commands_adds_a_subcommand(run_core):
    import click

    class CommandPlugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello")
            def hello():
                click.echo("hello from a plugin")

    pm = get_plugin_manager(load_entrypoints=False, plugins=[CommandPlugin()], warn=False)
    assert run_core("hello", pm=pm).stdout == "hello from a plugin\n"


def test_register_config_schemas_is_collected(core_pm):
    from trainer_core.plugins import collect_registry

    registry = collect_registry(core_pm)
    assert "core.example" in registry.schemas and registry.schemas["core.example"].formats == ("json", "yaml")
    assert registry.owners[("schema", "core.example")] == "trainer_core.default_plugins.example"


class MemorySink:
    records: list = []

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def write(self, record):
        MemorySink.records.append(record)

    def truncate_after(self, step):
        pass

    def close(self):
        pass


class SinkPlugin:
    @hookimpl
    def register_metric_sinks(self, register):
        register("memory", MemorySink)


def test_register_metric_sinks_receive_every_logged_step(tmp_path, run_core):
    pytest.importorskip("torch")
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train
    from trainer_core.plugins import collect_registry
    from trainer_core.sinks import read_jsonl

    pm = get_plugin_manager(load_entrypoints=False, plugins=[SinkPlugin()], warn=False)
    assert {"jsonl", "console", "memory"} <= set(collect_registry(pm).sinks)
    MemorySink.records = []
    train(ExampleConfig(epochs=1, samples=300, batch_size=60), tmp_path, pm=pm, progress=False)
    assert (
        MemorySink.records == read_jsonl(tmp_path / "metrics.jsonl") and len(MemorySink.records) == 4 + 1
    )  # 240 training points / 60 per batch, then one val record
    assert "memory" in run_core("plugins", pm=pm).stdout


def test_a_hookimpl_with_a_typo_is_skipped_with_a_warning(capsys):
    typo = types.ModuleType("typo_plugin")

    @hookimpl
    def register_checkpoint_layout(register):  # missing "s": matches no hookspec
        pass

    typo.register_checkpoint_layout = register_checkpoint_layout
    pm = get_plugin_manager(load_entrypoints=False, plugins=[typo])
    assert "typo_plugin" in pm.failures and not pm.has_plugin("typo_plugin")
    assert "warning: plugin 'typo_plugin' skipped" in capsys.readouterr().err


def test_a_plugin_that_fails_to_import_does_not_break_the_cli(monkeypatch, run_core):
    from importlib import metadata

    broken = metadata.EntryPoint(name="broken", value="no_such_module_xyz:plugin", group="trainer_core")
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points", lambda **kw: [*real(**kw), broken] if kw.get("group") == "trainer_core" else real(**kw))
    pm = get_plugin_manager(warn=False)
    assert "broken" in pm.failures
    result = run_core("plugins", pm=pm)
    assert result.exit_code == 0 and "broken  FAILED" in result.stdout and "trainer_core.default_plugins.example" in result.stdout
    assert "no_such_module_xyz" not in sys.modules


def test_a_run_hands_a_committed_checkpoint_and_its_codebooks_to_plotters_after_the_fact(tmp_path):
    import numpy as np

    from trainer_core import CheckpointLayout, CodebookData, TrainingRun, VisualizationEvent

    class Catcher:
        def __init__(self):
            self.events = []

        @hookimpl
        def visualize_checkpoint(self, event, checkpoint):
            self.events.append((event, checkpoint))

    catcher = Catcher()
    pm = get_plugin_manager(load_entrypoints=False, plugins=[catcher], warn=False)
    layout = CheckpointLayout(name="test.files", package="test", checkpoint_dir="checkpoints")
    run = TrainingRun(None, layout=layout, run_dir=tmp_path / "run", pm=pm)
    with run:
        saved = run.save(step=3, epoch=1, files={"weights.json": {"w": [1, 2]}})
        assert catcher.events == []  # save without a visualization event draws nothing
        book = CodebookData(group="c0", level=1, vectors=np.zeros((4, 2)), usage=np.full(4, 0.25), dead=np.zeros(4, dtype=bool))
        run.visualize_checkpoint(VisualizationEvent(run_dir=run.run_dir, epoch=1, step=3, codebooks=[book]), saved)
    ((event, checkpoint),) = catcher.events
    assert checkpoint.path == saved.path and checkpoint.status == "ok" and event.codebooks == [book]
