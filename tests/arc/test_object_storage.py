"""arc on object storage: `arc train --checkpoint-dir s3://...` saves, resumes and refuses to
overwrite there; `arc-serve --checkpoint-dir s3://...` trains, saves, lists and fine-tunes from
the bucket, and a client-named encoder stays inside the prefix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")


from trainer_core import list_committed, load_checkpoint  # noqa: E402

BIN = Path(sys.executable).parent
SMALL = ["--set", "hidden_dim=16", "--set", "latent_dim=16", "--set", "embedding_dim=8", "--set", "num_conv_layers=2",
         "--set", "max_grid_size=6", "--set", "max_grids=200", "--set", "batch_size=16", "--set", "batches_per_epoch=6",
         "--set", "val_grids=50"]  # fmt: skip
TINY = {"hidden_dim": 16, "latent_dim": 16, "embedding_dim": 8, "num_conv_layers": 2, "max_grid_size": 6, "max_grids": 200,
        "batch_size": 16, "epochs": 50, "batches_per_epoch": 50, "val_grids": 50}  # fmt: skip


def _arc(*args):
    return subprocess.run([str(BIN / "arc"), *map(str, args)], capture_output=True, text=True, timeout=600, env=os.environ.copy())


def test_arc_train_saves_resumes_and_never_overwrites_on_s3(s3_root):
    where = f"{s3_root}/arc"
    first = _arc("train", "--checkpoint-dir", where, "--save-as", "one", "--set", "epochs=1", *SMALL, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout)["checkpoint"] == f"{where}/one.pth"
    again = _arc("train", "--checkpoint-dir", where, "--save-as", "one", "--set", "epochs=1", *SMALL)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
    # resumed from a checkpoint written at the end of epoch 1: training goes on with epoch 2
    resumed = _arc("train", "--checkpoint-dir", where, "--resume", f"{where}/one.pth", "--save-as", "two", "--set", "epochs=2", *SMALL)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Epoch 2/2" in resumed.stdout and "Epoch 1/2" not in resumed.stdout
    two = load_checkpoint(f"{where}/two.pth")
    assert two.info.epoch == 2 and two["two.pth"]["batch"] == 6
    assert {Path(c.path).name for c in list_committed(where, "arc.system")} >= {"one.pth", "two.pth"}


def test_arc_serve_trains_saves_lists_and_fine_tunes_on_s3(wait_for_status, s3_root):
    from arc_comm.server import create_app

    where = f"{s3_root}/served"
    app = create_app(where)
    with app.test_client() as client:
        assert (
            client.post(
                "/start_pretrain", json={**TINY, "pretrain_task": "binary", "pretrain_epochs": 1, "batches_per_epoch": 5}
            ).status_code
            == 200
        )
        wait_for_status(client, lambda s: s["mode"] == "finished")
        assert load_checkpoint(f"{where}/pretrained_encoder_binary.pth").info.layout == "arc.pretrained_encoder"

        for bad in ("../x.pth", "a/b.pth", ".hidden.pth", "nope.pth"):
            r = client.post("/start_train", json={**TINY, "pretrained_encoder": bad})
            assert r.status_code == 400 and "pretrained_encoder" in r.get_json()["error"], bad
        r = client.post("/start_train", json={**TINY, "pretrained_encoder": "pretrained_encoder_binary.pth"})
        assert r.status_code == 200, r.get_json()
        wait_for_status(client, lambda s: s["batch"] >= 2)
        assert client.post("/save_checkpoint", json={"name": "mid"}).status_code == 200
        wait_for_status(client, lambda s: any(x["name"] == "mid" and x["state"] == "written" for x in s["saves"]))
        assert client.post("/save_checkpoint", json={"name": "mid"}).status_code == 409
        listed = client.get("/list_checkpoints").get_json()["checkpoints"]
        assert [(c["filename"], c["path"]) for c in listed] == [("mid.pth", f"{where}/mid.pth")]
        client.post("/stop", json={})
        wait_for_status(client, lambda s: s["mode"] in ("stopped", "finished"))
