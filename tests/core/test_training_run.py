"""Core's run API: what every trainer gets from TrainingRun, and models loaded from any checkpoint."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from trainer_core import CheckpointLayout, ModelSpec, TorchState, TrainingRun, UsageError, hookimpl, load_model  # noqa: E402
from trainer_core.config import TrainerConfig  # noqa: E402
from trainer_core.example.config import ExampleConfig  # noqa: E402
from trainer_core.example.trainer import train  # noqa: E402
from trainer_core.plugins import collect_registry, get_plugin_manager  # noqa: E402

SMALL = dict(epochs=2, samples=300, batch_size=60, async_save=False)


class TinyConfig(TrainerConfig):
    seed: int = 0
    width: int = 4


TINY = CheckpointLayout(name="tiny.train", package="tiny", version=2, single_file=True, name_format="tiny_{step:04d}.pt", model="tiny.linear")


class TinyPlugin:
    @hookimpl
    def register_checkpoint_layouts(self, register):
        register(TINY)

    @hookimpl
    def register_models(self, register):
        def load(path):
            from trainer_core import load_checkpoint

            (payload,) = load_checkpoint(path).files.values()
            model = torch.nn.Linear(2, payload["config"]["width"])
            model.load_state_dict(payload["model_state_dict"])
            return model

        register(ModelSpec(name="tiny.linear", package="tiny", framework="torch", layouts=("tiny.train",), load=load))


def test_hook_register_models_and_load_model_on_the_example(tmp_path, core_pm, run_core):
    summary = train(ExampleConfig(**SMALL), tmp_path / "run", pm=core_pm, progress=False)
    assert "core.spiral-mlp" in collect_registry(core_pm).models
    model = load_model(summary["latest_checkpoint"], pm=core_pm)
    assert model(torch.zeros(5, 2)).shape == (5, 3) and not model.training
    shown = run_core("show", summary["latest_checkpoint"])
    n = sum(p.numel() for p in model.parameters())
    assert f"core.spiral-mlp ({n:,} parameters)" in shown.stdout and "core.example v1" in shown.stdout
    manifest = json.loads(run_core("show", summary["latest_checkpoint"], "--json").stdout)
    assert manifest["extra"]["model"] == {"name": "core.spiral-mlp", "parameters": n}
    assert manifest["config_hash"] and manifest["layout_version"] == 1


def test_single_file_layout_records_its_version_config_and_restores_exactly(tmp_path):
    pm = get_plugin_manager(load_entrypoints=False, plugins=[TinyPlugin()], warn=False)
    config = TinyConfig()
    model = torch.nn.Linear(2, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(3)
    with TrainingRun(config, layout=TINY, state=TorchState(model, optimizer, generators={"g": generator}), run_dir=tmp_path, pm=pm) as run:
        for step in (1, 2):
            model(torch.randn(3, 2, generator=generator)).sum().backward()
            optimizer.step()
            run.log({"loss": float(step)}, step=step)
            run.save(step=step, metrics={"loss": float(step)}, payload={"note": "seed keys live beside core's"})
        expected_next = torch.randn(2, generator=generator)
    path = tmp_path / "checkpoints" / "tiny_0002.pt"
    payload = torch.load(path, weights_only=True)
    assert payload["config"] == {"seed": 0, "width": 4} and payload["note"].startswith("seed keys")
    assert json.loads((tmp_path / "checkpoints" / "tiny_0002.pt.manifest.json").read_text())["layout_version"] == 2
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    assert isinstance(load_model(path, pm=pm), torch.nn.Linear)

    fresh = torch.nn.Linear(2, 4)
    fresh_gen = torch.Generator()
    resumed = TrainingRun(config, layout=TINY, state=TorchState(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), generators={"g": fresh_gen}),
                          resume=tmp_path, pm=pm)  # fmt: skip
    assert resumed.position == {"step": 2, "epoch": None}
    assert torch.equal(fresh.weight, model.weight) and torch.equal(torch.randn(2, generator=fresh_gen), expected_next)
    resumed.finish()  # releases the run directory's lock
    with pytest.raises(UsageError, match="another config"):
        TrainingRun(TinyConfig(width=5), layout=TINY, state=TorchState(torch.nn.Linear(2, 5)), resume=tmp_path, pm=pm)


def test_load_model_names_the_missing_package(tmp_path, core_pm):
    pm = get_plugin_manager(load_entrypoints=False, plugins=[TinyPlugin()], warn=False)
    with TrainingRun(TinyConfig(), layout=TINY, state=TorchState(torch.nn.Linear(2, 4)), run_dir=tmp_path, pm=pm) as run:
        run.save(step=1)
    with pytest.raises(UsageError, match="install tiny"):
        load_model(tmp_path / "checkpoints" / "tiny_0001.pt", pm=core_pm)


def test_a_failing_loop_still_closes_and_reports(tmp_path, core_pm):
    events = []

    class Watcher:
        @hookimpl
        def on_train_error(self, run, error):
            events.append(("error", str(error)))

        @hookimpl
        def on_train_end(self, run, status):
            events.append(("end", status))

    pm = get_plugin_manager(load_entrypoints=False, plugins=[Watcher()], warn=False)
    with pytest.raises(RuntimeError), TrainingRun(TinyConfig(), layout=TINY, run_dir=tmp_path, pm=pm) as run:
        run.log({"loss": 1.0}, step=1)
        raise RuntimeError("boom")
    assert events == [("error", "boom"), ("end", "failed")]
    assert (tmp_path / "history.json").exists() and (tmp_path / "config.yaml").exists()
