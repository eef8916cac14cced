"""Headless training session: a save during training gives a loadable file that agrees with the run."""

from __future__ import annotations

import torch

from arc_comm.config import ArcConfig
from arc_comm.session import TrainingSession, build_model

TINY = dict(hidden_dim=16, latent_dim=16, embedding_dim=8, num_conv_layers=2, max_grid_size=6, max_grids=200, batch_size=16,
            epochs=2, batches_per_epoch=5, val_grids=50)  # fmt: skip


def test_save_during_training_loads_with_weights_only_and_agrees(tmp_path):
    session = TrainingSession(ArcConfig(**TINY), checkpoint_dir=tmp_path / "checkpoints")
    session.request_save("early")
    status = session.run()
    session.close()
    assert status["mode"] == "finished" and status["epoch"] == 2 and status["val_acc"] is not None
    path = tmp_path / "checkpoints" / "early.pth"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["batch"] == 1 and ckpt["task_type"] == "selection" and ckpt["dataset_version"] == "arcagi"
    model = build_model(ArcConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model_state_dict"])  # the architecture fields rebuild the same model
    optimizer = torch.optim.Adam(model.parameters(), lr=ckpt["learning_rate"])
    optimizer.load_state_dict(ckpt["optimizer_state_dict"])
    assert optimizer.state_dict()["state"][0]["step"].item() == 1  # saved after exactly one step
    assert (tmp_path / "checkpoints" / "early.pth.manifest.json").exists()


def test_arc_train_and_checkpoint_info(tmp_path):
    import json

    from click.testing import CliRunner

    from arc_comm.cli import cli

    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(
        cli, ["train", "--checkpoint-dir", str(tmp_path), "--save-as", "run1", "--json", *sets], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    info = CliRunner().invoke(cli, ["checkpoint-info", str(tmp_path / "run1.pth"), "--json"])
    data = json.loads(info.output)
    assert data["epoch"] == 2 and data["vocab_size"] == 25 and data["max_message_length"] == 2 and data["parameters"] > 1000
    again = CliRunner().invoke(cli, ["train", "--checkpoint-dir", str(tmp_path), "--save-as", "run1", *sets])
    assert again.exit_code == 2 and "exists" in again.output  # never overwritten silently
    bad = CliRunner().invoke(cli, ["train", "--set", "vocab_sise=3"])
    assert bad.exit_code == 2 and "vocab_sise" in bad.output
