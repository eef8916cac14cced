"""arc-serve's JSON API: the seed's endpoints and every error case, training in the background."""

from __future__ import annotations

import time

import pytest
import torch

from arc_comm.server import create_app

TINY = {"hidden_dim": 16, "latent_dim": 16, "embedding_dim": 8, "num_conv_layers": 2, "max_grid_size": 6, "max_grids": 200,
        "batch_size": 16, "epochs": 50, "batches_per_epoch": 50, "val_grids": 50}  # fmt: skip


@pytest.fixture
def client(tmp_path):
    app = create_app(tmp_path / "checkpoints")
    with app.test_client() as c:
        c.checkpoints = tmp_path / "checkpoints"
        yield c
        c.post("/stop", json={})
        deadline = time.time() + 30
        while c.get("/status").get_json()["mode"] in ("training", "stopping") and time.time() < deadline:
            time.sleep(0.05)


def _wait(client, predicate, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get("/status").get_json()
        if predicate(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"timed out; last status {status}")


def test_errors_before_training(client):
    assert client.get("/status").get_json()["mode"] == "idle"
    r = client.post("/save_checkpoint", json={"name": "x"})
    assert r.status_code == 400 and "not running" in r.get_json()["error"]
    assert client.post("/stop", json={}).status_code == 400
    assert client.get("/list_checkpoints").get_json() == {"checkpoints": []}


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"vocab_sise": 3}, "'vocab_sise'"),
        ({"batch_size": "many"}, "'batch_size'"),
        ({"task_type": "telepathy"}, "'task_type'"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_configs_get_400_naming_the_field(client, body, needle):
    r = client.post("/start_train", json=body)
    assert r.status_code == 400 and needle in r.get_json()["error"]


def test_malformed_and_oversized_bodies(client):
    r = client.post("/start_train", data="{not json", content_type="application/json")
    assert r.status_code == 400
    r = client.post("/start_train", data="x" * (70 * 1024), content_type="application/json")
    assert r.status_code == 413


def test_train_save_list_and_conflicts(client):
    r = client.post("/start_train", json=TINY)
    assert r.status_code == 200 and r.get_json()["status"] == "started"
    assert client.post("/start_train", json=TINY).status_code == 409  # already training
    _wait(client, lambda s: s["batch"] >= 3)
    for bad in ("../../x", ".hidden", "a/b", "x" * 101, ""):
        r = client.post("/save_checkpoint", json={"name": bad})
        assert (r.status_code == 400 and "name" in r.get_json()["error"]) or (bad == "" and r.status_code == 200), bad
    r = client.post("/save_checkpoint", json={"name": "good_one"})
    assert r.status_code == 200 and r.get_json() == {
        "status": "requested", "checkpoint_name": "good_one", "message": "Checkpoint save requested: good_one",
    }  # fmt: skip
    path = client.checkpoints / "good_one.pth"
    deadline = time.time() + 30
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    ckpt = torch.load(path, weights_only=True)
    status = client.get("/status").get_json()
    assert ckpt["epoch"] <= status["epoch"] and ckpt["batch"] >= 3
    assert ckpt["optimizer_state_dict"]["state"][0]["step"].item() == (ckpt["epoch"] - 1) * TINY["batches_per_epoch"] + ckpt["batch"]
    listed = client.get("/list_checkpoints").get_json()["checkpoints"]
    names = {c["filename"] for c in listed}
    assert "good_one.pth" in names
    row = next(c for c in listed if c["filename"] == "good_one.pth")
    assert row["task_type"] == "selection" and row["vocab_size"] == 25 and row["size_mb"] > 0
    r = client.post("/save_checkpoint", json={"name": "good_one"})
    assert r.status_code == 409 and "overwrite" in r.get_json()["error"]  # never overwritten silently
    assert not list(client.checkpoints.glob("*x*"))  # nothing escaped the directory
    assert client.get("/examples").get_json()["examples"][0]["message"]
    assert client.post("/stop", json={}).get_json()["status"] == "stopping"
    _wait(client, lambda s: s["mode"] in ("stopped", "finished"))


def test_dashboard_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and b"/save_checkpoint" in page.data and b"<canvas" in page.data


def test_pretraining_refuses_saves_and_writes_the_encoder(client):
    r = client.post("/start_pretrain", json={**TINY, "pretrain_task": "telepathy"})
    assert r.status_code == 400 and "'pretrain_task'" in r.get_json()["error"]
    r = client.post("/start_pretrain", json={**TINY, "pretrain_task": "binary", "pretrain_epochs": 2, "batches_per_epoch": 40})
    assert r.status_code == 200 and r.get_json()["mode"] == "pretraining"
    _wait(client, lambda s: s["mode"] == "pretraining" and s["batch"] >= 1)
    r = client.post("/save_checkpoint", json={"name": "during_pretraining"})
    assert r.status_code == 400 and "pretraining" in r.get_json()["error"]
    assert client.post("/start_train", json=TINY).status_code == 409  # one run at a time
    _wait(client, lambda s: s["mode"] == "finished")
    saved = torch.load(client.checkpoints / "pretrained_encoder_binary.pth", weights_only=True)
    assert saved["pretrain_task"] == "binary" and saved["epoch"] == 2
    assert not (client.checkpoints / "during_pretraining.pth").exists()
    assert client.get("/list_checkpoints").get_json() == {"checkpoints": []}  # system checkpoints only, as the seed lists
