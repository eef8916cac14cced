"""spinlock train-vqvae --visualize-training: vizwatch draws category latents; training is unchanged."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from spinlock_vqvae.cli import cli
from spinlock_vqvae.dataset import generate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("vqviz") / "d.h5", samples=300, seed=1, progress=False)


def _train(dataset, out, *extra):
    args = ["train-vqvae", "--input", dataset, "--output", out, "--epochs", 6, "--batch-size", 64, "--set", "embedding_dim=8"]
    args += ["--set", "hidden_size=32", "--set", "val_every_n_epochs=2", "--no-progress", *extra]
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "training_history.json").read_text())


def test_latent_snapshots_are_drawn_and_change_nothing(dataset, tmp_path):
    plain = _train(dataset, tmp_path / "plain")
    viz_root = tmp_path / "viz"
    drawn = _train(dataset, tmp_path / "drawn", "--visualize-training", "--viz-every", 2, "--viz-method", "pca", "--viz-root", viz_root)
    assert drawn == plain  # snapshots read the model without touching its codebooks or the RNG
    meta = json.loads((viz_root / "run_001" / "run_metadata.json").read_text())
    assert meta["status"] == "completed"
    assert [f["epoch"] for f in meta["frames"]] == [2, 4, 6]
    import torch

    groups = torch.load(tmp_path / "drawn" / "best_model.pt", weights_only=True)["group_indices"]
    categories = meta["class_names"]
    assert len(categories) == len(groups) >= 2 and all(name.startswith(f"c{i} ") for i, name in enumerate(categories))
    assert all((viz_root / "run_001" / f["file"]).stat().st_size > 10_000 for f in meta["frames"])
    assert all(0.0 <= f["val_acc"] <= 1.0 for f in meta["frames"])
