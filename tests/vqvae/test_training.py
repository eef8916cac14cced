"""train-vqvae: gradients of the auxiliary losses, checkpoint contents, dry run, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from spinlock_vqvae.cli import cli
from spinlock_vqvae.dataset import generate
from spinlock_vqvae.model import orthogonality, topographic_loss

QUICK = [
    "--set",
    "embedding_dim=16",
    "--set",
    "hidden_size=32",
    "--batch-size",
    "64",
    "--set",
    "max_clusters=6",
    "--set",
    "val_every_n_epochs=1",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("vq") / "d.h5", samples=240, seed=0, progress=False)


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_orthogonality_and_topographic_losses_have_gradients():
    torch.manual_seed(0)
    latents = [torch.randn(32, 8, requires_grad=True) for _ in range(3)]
    orthogonality(latents).backward()
    assert all(z.grad is not None and z.grad.abs().sum() > 0 for z in latents)
    x = torch.randn(64, 10)
    z = torch.randn(64, 4, requires_grad=True)
    topographic_loss(x, z, 128, torch.Generator().manual_seed(0)).backward()
    assert z.grad.abs().sum() > 0


def test_training_writes_the_seed_outputs_readable_without_unpickling(dataset, tmp_path):
    out = tmp_path / "out"
    result = _run("train-vqvae", "--input", dataset, "--output", out, "--epochs", 3, *QUICK, "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    for name in ("best_model.pt", "last_model.pt", "normalization_stats.npz", "training_history.json", "config.yaml"):
        assert (out / name).exists(), name
    best = torch.load(out / "best_model.pt", weights_only=True)
    assert {
        "model_state_dict",
        "optimizer_state_dict",
        "group_indices",
        "normalization_stats",
        "feature_names",
        "config",
        "history",
        "val_loss",
        "metrics",
    } <= set(best)
    assert len(json.loads((out / "training_history.json").read_text())) == 3
    assert {"reconstruction_quality", "utilization", "orthogonality", "topographic_correlation", "perplexity"} <= set(best["metrics"])
    # the run's picture, drawn by core at its end: losses, quality, utilisation per level, resets
    from trainer_core.plotting import read_curves

    assert (out / "metrics.png").stat().st_size > 10_000
    panels = {(c.metric, c.split) for c in read_curves(out / "metrics.jsonl", "run")}
    levels = {m for m, _ in panels if m.startswith("utilization_level")}
    assert {("loss", "train"), ("loss", "val"), ("reconstruction_quality", "val"), ("dead_codes_reset", "train")} <= panels
    assert len(levels) == len(best["config"]["compression_ratios"].split(":"))  # one utilisation curve per level


def test_dry_run_trains_and_writes_nothing(dataset, tmp_path):
    out = tmp_path / "dry"
    result = _run("train-vqvae", "--input", dataset, "--output", out, "--dry-run", "--verbose", *QUICK)
    assert result.exit_code == 0, result.output
    assert "categories:" in result.output and "estimated time per epoch" in result.output and "category 0:" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "learnig_rate=0.1"], "unknown key 'learnig_rate' (did you mean 'learning_rate'?)"),
        (["--set", "compression_ratios=1:2"], "compression_ratios"),
    ],
)
def test_config_errors_exit_2(dataset, tmp_path, args, needle):
    result = _run("train-vqvae", "--input", dataset, "--output", tmp_path / "o", *args)
    assert result.exit_code == 2 and result.output.startswith("error: ") and needle in result.output, result.output


def test_corrupt_dataset_exits_2(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    result = _run("train-vqvae", "--input", bad, "--output", tmp_path / "o")
    assert result.exit_code == 2 and "not a readable HDF5 file" in result.output
    assert not (tmp_path / "o").exists()


def test_encode_round_trip_and_feature_mismatch(dataset, tmp_path):
    import h5py
    import numpy as np

    from spinlock_vqvae.dataset import FeatureDataset
    from spinlock_vqvae.encode import TrainedModel

    out = tmp_path / "out"
    assert _run("train-vqvae", "--input", dataset, "--output", out, "--epochs", 4, *QUICK, "--no-progress").exit_code == 0
    tokens_path = tmp_path / "tokens.h5"
    result = _run(
        "encode-to-tokens",
        "--dataset",
        dataset,
        "--vqvae-model",
        out / "best_model.pt",
        "--output",
        tokens_path,
        "--batch-size",
        50,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    trained = TrainedModel(out / "best_model.pt")
    with h5py.File(tokens_path) as f, FeatureDataset(dataset) as data:
        tokens = torch.from_numpy(f["tokens"][()]).long()
        assert tokens.shape == (len(data), len(trained.groups), 3) and f.attrs["model_sha256"]
        assert (tokens.max(0).values.max(0).values < torch.tensor(trained.codes)).all()
        parts = trained.parts(data.read())
    from spinlock_vqvae.config import VQVAEConfig
    from spinlock_vqvae.train import Prepared

    val = torch.from_numpy(Prepared(VQVAEConfig(**torch.load(out / "best_model.pt", weights_only=True)["config"])).val_idx)
    recon = torch.cat(trained.model.decode_tokens(tokens[val]), 1)
    quality = 1 - torch.nn.functional.mse_loss(recon, torch.cat([p[val] for p in parts], 1)).item()
    assert quality == pytest.approx(trained.metrics["reconstruction_quality"], abs=1e-4)  # tokens decode to the stated quality
    # a dataset whose columns differ is refused, naming the first difference
    renamed = tmp_path / "renamed.h5"
    with h5py.File(dataset) as src, h5py.File(renamed, "w") as dst:
        for key in src:
            src.copy(src[key], dst, key)
        names = [n.decode() for n in src["feature_names"][()]]
        names[5] = "spatial.bogus"
        del dst["feature_names"]
        dst["feature_names"] = np.array(names, dtype=object).astype(h5py.string_dtype("utf-8"))
    refused = _run("encode-to-tokens", "--dataset", renamed, "--vqvae-model", out / "best_model.pt", "--output", tmp_path / "t2.h5")
    assert refused.exit_code == 2 and "column 5 is 'spatial.bogus'" in refused.output
    assert not (tmp_path / "t2.h5").exists()
    # NaN values met while streaming: one line naming the feature and rows, no partial output
    poisoned = tmp_path / "nan.h5"
    with h5py.File(dataset) as src, h5py.File(poisoned, "w") as dst:
        for key in src:
            src.copy(src[key], dst, key)
        names = [n.decode() for n in src["feature_names"][()]]
        dst["features"][130, 7] = np.nan
    result = _run(
        "encode-to-tokens",
        "--dataset",
        poisoned,
        "--vqvae-model",
        out / "best_model.pt",
        "--output",
        tmp_path / "t3.h5",
        "--batch-size",
        50,
    )
    assert result.exit_code == 2 and f"rows 100-149: {names[7]} (1)" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "t3.h5").exists() and not list(tmp_path.glob(".tmp-*"))


def _final_metrics(out):
    return json.loads((out / "training_history.json").read_text())[-1]


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_final_metrics(dataset, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    spinlock = os.path.join(os.path.dirname(sys.executable), "spinlock")
    args = ["train-vqvae", "--input", str(dataset), "--epochs", "8", *QUICK, "--set", "dead_code_reset_interval=7", "--no-progress"]
    subprocess.run([spinlock, *args, "--output", str(tmp_path / "full")], check=True, capture_output=True)
    crash = tmp_path / "crash"
    proc = subprocess.Popen([spinlock, *args, "--output", str(crash)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(json.loads((crash / "training_history.json").read_text())) >= 3:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed: nothing was resumed"
    done = subprocess.run(
        [spinlock, *args, "--output", str(crash), "--resume-from", str(crash / "last_model.pt")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    a, b = _final_metrics(tmp_path / "full"), _final_metrics(crash)
    assert a["epoch"] == b["epoch"] == 8
    for key in ("reconstruction_quality", "utilization", "orthogonality", "topographic_correlation", "val_loss"):
        assert a[key] == b[key], key  # bit-identical
    assert [h["epoch"] for h in json.loads((crash / "training_history.json").read_text())] == list(range(1, 9))


def test_dead_code_reset_matters_at_a_large_codebook(dataset, tmp_path):
    common = ["--input", dataset, "--epochs", 10, *QUICK, "--set", "compression_ratios=3:4:5", "--set", "ema_decay=0.8", "--no-progress"]
    assert (
        _run(
            "train-vqvae", *common, "--output", tmp_path / "on", "--set", "dead_code_reset_interval=3", "--set", "dead_code_threshold=50"
        ).exit_code
        == 0
    )
    assert _run("train-vqvae", *common, "--output", tmp_path / "off", "--set", "dead_code_reset_interval=0").exit_code == 0
    on, off = _final_metrics(tmp_path / "on"), _final_metrics(tmp_path / "off")
    assert on["utilization"] > off["utilization"] + 0.05, (on["utilization"], off["utilization"])
