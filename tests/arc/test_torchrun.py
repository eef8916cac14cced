"""`torchrun --nproc_per_node=2 arc train`: each rank plays its share of every batch, the in-batch
negatives are the whole batch's, the ranks keep one model, and one checkpoint series is written
(arc-serve and arc pretrain stay in one process and say so)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from trainer_core import list_committed, verify_checkpoint  # noqa: E402

BIN = Path(sys.executable).parent
TINY = {"hidden_dim": 16, "latent_dim": 16, "embedding_dim": 8, "num_conv_layers": 2, "max_grid_size": 6, "max_grids": 200,
        "batch_size": 16, "epochs": 2, "batches_per_epoch": 4, "val_grids": 50}  # fmt: skip
SETS = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]

RANK_SCRIPT = textwrap.dedent(
    """
    import hashlib, os, sys
    import arc_comm.session as session
    from arc_comm.cli import cli
    original = session.TrainingSession.close
    def close(self):
        original(self)
        weights = b"".join(v.numpy().tobytes() for _, v in sorted(self.model.state_dict().items()))
        print(f"RANK{os.environ['RANK']} {hashlib.sha256(weights).hexdigest()}", file=sys.stderr, flush=True)
    session.TrainingSession.close = close
    cli.main(sys.argv[1:])
    """
)


def _weights(path):
    return torch.load(path, weights_only=True)["model_state_dict"]


@pytest.mark.slow
def test_two_ranks_keep_one_model_and_match_one_process_without_sampling(tmp_path, torchrun_env):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = torchrun_env
    # the autoencoder bottleneck draws no noise: 2 ranks x 8 games = 1 process x 16 games, in-batch negatives included
    plain = [*SETS, "--set", "bottleneck_type=autoencoder", "--json"]
    two = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(script), "train", "--checkpoint-dir",
                          str(tmp_path / "two"), *plain], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    digests = {line.split()[0]: line.split()[1] for line in two.stderr.splitlines() if line.startswith("RANK")}
    assert set(digests) == {"RANK0", "RANK1"} and digests["RANK0"] == digests["RANK1"]
    assert json.loads(two.stdout)["checkpoint"].endswith("final_epoch_2.pth")  # one summary: rank 0's
    one = subprocess.run([str(BIN / "arc"), "train", "--checkpoint-dir", str(tmp_path / "one"), *plain], capture_output=True, text=True,
                         timeout=600, env=env)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = _weights(tmp_path / "two" / "final_epoch_2.pth"), _weights(tmp_path / "one" / "final_epoch_2.pth")
    # candidate.bias adds v_i . b to every score of game i, so its true gradient is zero: Adam turns
    # its float noise into steps of the learning rate's size in either run; every other weight agrees
    for name in (n for n in b if n != "candidate.bias"):
        assert torch.allclose(a[name].float(), b[name].float(), atol=1e-5), name
    series = list_committed(tmp_path / "two")
    assert all(c.extra["world_size"] == 2 and verify_checkpoint(c.path).status == "ok" for c in series)
    assert [p.name for p in (tmp_path / "two" / "runs").iterdir()] == ["run_001"]  # the ranks agreed on one run folder


@pytest.mark.slow
def test_the_communication_game_under_two_ranks_resumes_in_one_process(tmp_path, torchrun_env):
    env = torchrun_env
    two = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "arc"), "train", "--checkpoint-dir",
                          str(tmp_path / "ck"), *SETS], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("saved") == 1
    final = tmp_path / "ck" / "final_epoch_2.pth"
    assert set(torch.load(final, weights_only=True)["rank_states"]) == {"1"}
    longer = subprocess.run([str(BIN / "arc"), "train", "--checkpoint-dir", str(tmp_path / "ck"), "--resume", str(final), *SETS,
                             "--set", "epochs=3", "--json"], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert "written by 2 rank(s)) with 1" in longer.stderr and json.loads(longer.stdout)["epoch"] == 3
