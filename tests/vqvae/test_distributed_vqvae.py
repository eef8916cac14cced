"""`torchrun --nproc_per_node=2 spinlock train-vqvae`: the two ranks keep one codebook, reach the
parameters of one process at the same global batch, and commit one checkpoint series."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from spinlock_vqvae.dataset import generate  # noqa: E402
from trainer_core import list_committed, verify_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ARGS = ["--epochs", "3", "--set", "embedding_dim=16", "--set", "hidden_size=32", "--batch-size", "64", "--set", "max_clusters=6",
        "--set", "val_every_n_epochs=1", "--set", "dead_code_reset_interval=2", "--no-progress"]  # fmt: skip

RANK_SCRIPT = textwrap.dedent(
    """
    import hashlib, os, sys
    import spinlock_vqvae.train as training
    from spinlock_vqvae.cli import cli
    models = []
    original = training.Prepared.__init__
    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        models.append(self.model)
    training.Prepared.__init__ = keep
    try:
        cli.main(sys.argv[1:])
    except SystemExit as done:
        assert not done.code, done.code
    state = models[-1].state_dict()
    codebooks = b"".join(v.numpy().tobytes() for k, v in sorted(state.items()) if k.endswith("codebook"))
    print(f"RANK{os.environ['RANK']} codebooks {hashlib.sha256(codebooks).hexdigest()}", flush=True)
    """
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("vqd") / "d.h5", samples=240, seed=0, progress=False)


def test_two_ranks_share_one_codebook_and_train_like_one_process(dataset, tmp_path, torchrun_env):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = torchrun_env
    two = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(script), "train-vqvae", "--input", str(dataset),
                          "--output", str(tmp_path / "two"), *ARGS], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-3000:]
    digests = {line.split()[0]: line.split()[2] for line in two.stdout.splitlines() if line.startswith("RANK")}
    assert set(digests) == {"RANK0", "RANK1"} and digests["RANK0"] == digests["RANK1"]  # k-means, EMA, resets: one codebook
    one = subprocess.run([str(BIN / "spinlock"), "train-vqvae", "--input", str(dataset), "--output", str(tmp_path / "one"), *ARGS],
                         capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a = torch.load(tmp_path / "two" / "last_model.pt", weights_only=True)
    b = torch.load(tmp_path / "one" / "last_model.pt", weights_only=True)
    for name, value in b["model_state_dict"].items():
        assert torch.allclose(a["model_state_dict"][name].float(), value.float(), atol=1e-5), name
    assert a["history"][-1]["val_loss"] == pytest.approx(b["history"][-1]["val_loss"], rel=1e-3)
    series = list_committed(tmp_path / "two")
    assert {Path(c.path).name for c in series} >= {"last_model.pt"} and all(verify_checkpoint(c.path).status == "ok" for c in series)
    assert all(c.extra["world_size"] == 2 for c in series) and set(a["rank_states"]) == {"1"}
    shown = subprocess.run([str(BIN / "core"), "show", str(tmp_path / "two" / "last_model.pt")], capture_output=True, text=True)
    assert "world_size: 2" in shown.stdout, shown.stdout + shown.stderr
