"""`spinlock train-vqvae --output s3://...`: the tokenizer trains to a bucket, resumes from it,
encodes from it, and `core list-checkpoints s3://bucket` lists it beside core's example run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from spinlock_vqvae.dataset import generate  # noqa: E402
from trainer_core import load_checkpoint  # noqa: E402

BIN = Path(sys.executable).parent
ARGS = ["--set", "embedding_dim=16", "--set", "hidden_size=32", "--batch-size", "64", "--set", "max_clusters=6",
        "--set", "val_every_n_epochs=1", "--no-progress"]  # fmt: skip


def _run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, env=os.environ.copy())


def test_vqvae_trains_to_resumes_from_and_lists_on_s3(s3_root, tmp_path):
    dataset = generate(tmp_path / "d.h5", samples=240, seed=0, progress=False)
    url = f"{s3_root}/team/vqvae/run1"
    first = _run(BIN / "spinlock", "train-vqvae", "--input", dataset, "--output", url, "--epochs", "2", *ARGS)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = _run(BIN / "spinlock", "train-vqvae", "--input", dataset, "--resume-from", f"{url}/last_model.pt", "--epochs", "3", *ARGS)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    last = load_checkpoint(f"{url}/last_model.pt")
    assert last.info.epoch == 3 and [h["epoch"] for h in last["last_model.pt"]["history"]] == [1, 2, 3]

    tokens = _run(BIN / "spinlock", "encode-to-tokens", "--dataset", dataset, "--vqvae-model", f"{url}/best_model.pt",
                  "--output", tmp_path / "tokens.h5", "--json")  # fmt: skip
    assert tokens.returncode == 0 and json.loads(tokens.stdout)["samples"] == 240, tokens.stderr[-2000:]

    example = _run(BIN / "core", "example-train", "--output", f"{s3_root}/team/example/run1", "--epochs", "1", "--set", "samples=200",
                   "--no-progress")  # fmt: skip
    assert example.returncode == 0, example.stderr[-2000:]
    listed = _run(BIN / "core", "list-checkpoints", f"{s3_root}/team", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["package"] for r in rows} == {"spinlock-vqvae", "trainer-core"}
    assert all(r["status"] == "ok" for r in rows)
    assert {r["path"].rsplit("/", 1)[1] for r in rows if r["package"] == "spinlock-vqvae"} == {"best_model.pt", "last_model.pt"}
    table = _run(BIN / "core", "list-checkpoints", f"{s3_root}/team", "--wide")
    assert f"{url}  [spinlock-vqvae]" in table.stdout and "STATUS" in table.stdout.splitlines()[0]
