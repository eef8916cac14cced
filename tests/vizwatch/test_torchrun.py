"""`torchrun --nproc_per_node=2 vizwatch train`: one checkpoint series with both ranks' parts, the
latent snapshots drawn once, by rank 0, and batch norm over the global batch (core's
GlobalBatchNorm on CPU): the model computes what one process's model computes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainer_core import list_committed, verify_checkpoint

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def test_two_ranks_write_one_series_and_one_set_of_snapshots(tmp_path, torchrun_env):
    result = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "vizwatch"), "train", "--samples", "900", "--epochs", "3",
         "--visualize-training", "--viz-every", "3", "--viz-method", "pca", "--viz-root", str(tmp_path / "viz"), "--output",
         str(tmp_path / "run"), "--no-progress", "--set", "viz_worker=thread"],
        capture_output=True, text=True, timeout=600, env=torchrun_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("completed: epoch 3") == 1  # rank 1 prints nothing
    series = list_committed(tmp_path / "run" / "checkpoints")
    assert [c.epoch for c in series] == [1, 2, 3]
    assert all(c.extra["world_size"] == 2 and verify_checkpoint(c.path).status == "ok" for c in series)
    runs = sorted(p.name for p in (tmp_path / "viz").iterdir())
    assert runs == ["run_001"]  # one set of pictures: rank 0's
    assert sorted(p.name for p in (tmp_path / "viz" / "run_001").glob("epoch_*.png"))[0].startswith("epoch_001")


def test_two_ranks_with_global_batch_norm_compute_what_one_process_computes(tmp_path, torchrun_env):
    import torch

    from trainer_core import load_model

    args = ["--samples", "900", "--epochs", "3", "--set", "dropout=0", "--batch-size", "64", "--no-progress"]
    env = torchrun_env
    two = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "vizwatch"), "train", *args, "--output",
                          str(tmp_path / "two")], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([str(BIN / "vizwatch"), "train", *args, "--output", str(tmp_path / "one")], capture_output=True, text=True,
                         timeout=600, env=env)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a = load_model(list_committed(tmp_path / "two" / "checkpoints")[-1].path)
    b = load_model(list_committed(tmp_path / "one" / "checkpoints")[-1].path)
    x = torch.randn(500, a.encoder[0].in_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(a.eval()(x), b.eval()(x), atol=5e-4)  # measured 1e-4 on logits of about 1
    # weight for weight too, but for the biases just before a batch norm (their true gradient is zero:
    # AdamW turns float noise into small steps, which the running means absorb)
    wa, wb = a.state_dict(), b.state_dict()
    for name in (n for n in wb if not n.endswith(("0.bias", "4.bias", "running_mean"))):
        assert torch.allclose(wa[name].float(), wb[name].float(), atol=1e-5), name
