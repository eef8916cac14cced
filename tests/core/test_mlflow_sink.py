"""The MLflow sink: a run read back with MlflowClient has its metrics, params, tags and checkpoint
manifests, and a resumed run's continuation holds every step once."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("torch")


def _client(run_dir):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")


def _runs(client):
    experiments = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r for r in client.search_runs(experiments)}


def test_a_run_and_its_resume_read_back_from_mlflow(tmp_path, core_pm, monkeypatch):
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    monkeypatch.setenv("TRAINER_CORE_MLFLOW", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = ExampleConfig(epochs=2, samples=300, batch_size=30, checkpoint_every_steps=4, keep_last=3, hidden_size=8, seed=2)
    run_dir = tmp_path / "run"
    part = train(config, run_dir, pm=core_pm, progress=False, max_steps=14)  # last checkpoint at step 12
    assert part["status"] == "interrupted"
    client = _client(run_dir)
    (first,) = _runs(client).values()
    assert sorted({m.step for m in client.get_metric_history(first.info.run_id, "train/loss")}) == list(range(1, 15))

    done = train(config, resume=run_dir, pm=core_pm, progress=False)
    runs = _runs(client)
    assert len(runs) == 2
    latest = next(r for r in runs.values() if r.info.run_id != first.info.run_id)
    old = runs[first.info.run_id]

    steps = [m.step for m in client.get_metric_history(latest.info.run_id, "train/loss")]
    assert sorted(steps) == list(range(1, done["step"] + 1))  # each step once: 1..12 continued, 13.. anew
    assert [m.step for m in client.get_metric_history(latest.info.run_id, "val/val_acc")] == [done["step"] // 2, done["step"]]
    assert latest.data.tags["trainer_core.continues"] == old.info.run_id
    assert latest.data.tags["trainer_core.resumed_from_step"] == "12"
    assert old.data.tags["trainer_core.continued_by"] == latest.info.run_id
    assert old.info.status == "KILLED" and latest.info.status == "FINISHED"
    assert latest.data.tags["trainer_core.package"] == "trainer-core"
    assert latest.data.tags["trainer_core.layout"] == "core.example"
    assert len(latest.data.tags["trainer_core.config_hash"]) == 64
    assert latest.data.params["hidden_size"] == "8" and latest.data.params["seed"] == "2"

    final = f"checkpoint_step_{done['step']:06d}"
    names = [a.path for a in client.list_artifacts(latest.info.run_id, "checkpoints")]
    assert f"checkpoints/{final}" in names
    manifest_file = client.download_artifacts(latest.info.run_id, f"checkpoints/{final}/manifest.json", str(tmp_path))
    manifest = json.loads(open(manifest_file).read())
    assert manifest["step"] == done["step"] and "model.safetensors" in manifest["files"]
    assert latest.data.tags[f"trainer_core.checkpoint.{final}"] == manifest["path"] == done["latest_checkpoint"]


def test_the_sink_stays_off_unless_asked(tmp_path, core_pm, monkeypatch):
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    monkeypatch.delenv("TRAINER_CORE_MLFLOW", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    train(ExampleConfig(epochs=1, samples=100, batch_size=50, hidden_size=4), tmp_path / "run", pm=core_pm, progress=False)
    assert not (tmp_path / "run" / "mlflow.db").exists()
