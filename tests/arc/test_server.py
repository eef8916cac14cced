"""arc-serve's JSON API: the seed's endpoints and every error case, training in the background."""

from __future__ import annotations

import errno
import socket
import threading
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


def test_train_save_list_and_conflicts(wait_for_status, client):
    r = client.post("/start_train", json=TINY)
    assert r.status_code == 200 and r.get_json()["status"] == "started"
    assert client.post("/start_train", json=TINY).status_code == 409  # already training
    wait_for_status(client, lambda s: s["batch"] >= 3)
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
    wait_for_status(client, lambda s: s["mode"] in ("stopped", "finished"))


def test_dashboard_page_and_its_charting_library_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and b"/save_checkpoint" in page.data and b'src="/static/plotly.min.js"' in page.data
    library = client.get("/static/plotly.min.js")  # from the installed plotly package: no CDN, no internet
    assert library.status_code == 200 and library.mimetype == "text/javascript" and len(library.data) > 1_000_000


def test_status_tells_training_and_validation_apart_and_saves_at_the_end(wait_for_status, client):
    r = client.post("/start_train", json={**TINY, "save_at_end": "yes"})
    assert r.status_code == 400 and "'save_at_end'" in r.get_json()["error"]
    short = {**TINY, "epochs": 2, "batches_per_epoch": 5, "num_distractors": 5}
    r = client.post("/start_train", json={**short, "save_at_end": True})
    assert r.status_code == 200 and r.get_json()["save_at_end"] is True and "save_at_end" not in r.get_json()["config"]
    status = wait_for_status(client, lambda s: s["mode"] == "finished" and any(e["state"] == "written" for e in s["saves"]))
    assert status["steps"] == list(range(1, 11)) and len(status["losses"]) == len(status["accuracies"]) == 10
    assert [(v["epoch"], v["step"]) for v in status["validations"]] == [(1, 5), (2, 10)]
    setup = status["setup"]
    assert setup["max_message_length"] == 2 and setup["vocab_size"] == 25 and setup["val_distractors"] == 5
    assert "1 of 16" in setup["train_accuracy_label"] and "1 of 6" in setup["val_accuracy_label"]  # two different games
    final = [c for c in client.get("/list_checkpoints").get_json()["checkpoints"] if c["filename"].endswith("_final.pth")]
    assert len(final) == 1 and final[0]["epoch"] == 2 and final[0]["batch"] == 10  # the global batch
    messages = client.get("/examples").get_json()["messages"]
    assert messages["grids"] == 50 and 1 <= messages["distinct_messages"] <= 50 and messages["vocab_size"] == 25
    assert [sum(row) for row in messages["symbol_counts"]] == [50, 50]  # each grid's message, one symbol per position


def test_a_run_without_save_at_end_leaves_no_checkpoint(wait_for_status, client):
    assert client.post("/start_train", json={**TINY, "epochs": 1, "batches_per_epoch": 3}).status_code == 200
    wait_for_status(client, lambda s: s["mode"] == "finished")
    assert client.get("/list_checkpoints").get_json()["checkpoints"] == []
    runs = list((client.checkpoints / "runs").glob("run_*"))
    deadline = time.time() + 30  # "finished" comes before the session closes its run (and draws it)
    while not (runs[0] / "metrics.png").is_file() and time.time() < deadline:
        time.sleep(0.1)
    assert len(runs) == 1 and (runs[0] / "metrics.png").is_file()  # core drew the run's curves at its end


def test_pretraining_refuses_saves_and_writes_the_encoder(wait_for_status, client):
    r = client.post("/start_pretrain", json={**TINY, "pretrain_task": "telepathy"})
    assert r.status_code == 400 and "'pretrain_task'" in r.get_json()["error"]
    r = client.post("/start_pretrain", json={**TINY, "pretrain_task": "binary", "pretrain_epochs": 2, "batches_per_epoch": 40})
    assert r.status_code == 200 and r.get_json()["mode"] == "pretraining"
    wait_for_status(client, lambda s: s["mode"] == "pretraining" and s["batch"] >= 1)
    r = client.post("/save_checkpoint", json={"name": "during_pretraining"})
    assert r.status_code == 400 and "pretraining" in r.get_json()["error"]
    assert client.post("/start_train", json=TINY).status_code == 409  # one run at a time
    wait_for_status(client, lambda s: s["mode"] == "finished")
    saved = torch.load(client.checkpoints / "pretrained_encoder_binary.pth", weights_only=True)
    assert saved["pretrain_task"] == "binary" and saved["epoch"] == 2
    assert not (client.checkpoints / "during_pretraining.pth").exists()
    assert client.get("/list_checkpoints").get_json() == {"checkpoints": []}  # system checkpoints only, as the seed lists


# --- tried as an attacker would: nothing lost, nothing outside its directory, JSON errors only ----


def _saved(status, name):
    return next((s for s in status["saves"] if s["name"] == name), None)


# --- 1: a second save with one name gets 409 and training goes on -------------------------------
def test_a_second_save_with_the_same_name_is_409_and_training_goes_on(wait_for_status, client):
    assert client.post("/start_train", json=TINY).status_code == 200
    wait_for_status(client, lambda s: s["batch"] >= 2)
    first = client.post("/save_checkpoint", json={"name": "twice"})
    second = client.post("/save_checkpoint", json={"name": "twice"})
    assert first.status_code == 200
    assert second.status_code == 409 and "already" in second.get_json()["error"]
    status = wait_for_status(client, lambda s: (_saved(s, "twice") or {}).get("state") == "written")
    batch = status["batch"]
    status = wait_for_status(client, lambda s: s["batch"] > batch + 3 or s["epoch"] > status["epoch"])
    assert status["mode"] == "training" and not status["error"]
    assert torch.load(client.checkpoints / "twice.pth", weights_only=True)["batch"] >= 2


def test_a_save_requested_at_the_end_of_the_run_is_written(tmp_path):
    """The request lands after the last batch (during the last validation): it is still written."""
    from arc_comm.config import ArcConfig
    from arc_comm.session import TrainingSession

    session = TrainingSession(ArcConfig(**{**TINY, "epochs": 1, "batches_per_epoch": 3}), tmp_path / "checkpoints")
    original = session.evaluate

    def evaluate_then_request():
        session.request_save("during_last_validation")
        return original()

    session.evaluate = evaluate_then_request
    try:
        session.run()
    finally:
        session.close()
    assert (tmp_path / "checkpoints" / "during_last_validation.pth").is_file()
    assert session.save_log[-1] == {"name": "during_last_validation", "state": "written", "error": None}


# --- 7: cross-site requests and DNS rebinding --------------------------------------------------
def test_foreign_host_and_origin_and_form_posts_are_refused(client):
    form = client.post("/start_train", data={"epochs": "1"})  # what an HTML form on any site can send
    assert form.status_code == 415 and "application/json" in form.get_json()["error"]
    rebound = client.post("/start_train", json=TINY, headers={"Host": "evil.example:5002"})
    assert rebound.status_code == 403 and "host" in rebound.get_json()["error"]
    assert client.get("/status", headers={"Host": "evil.example"}).status_code == 403
    cross = client.post("/stop", json={}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-origin" in cross.get_json()["error"]
    same = client.post("/stop", json={}, headers={"Origin": "http://localhost:5002"})
    assert same.status_code == 400  # allowed through: nothing is training
    assert client.get("/status").get_json()["mode"] == "idle"
    assert not client.checkpoints.exists() or not any(client.checkpoints.glob("*.pth"))


def test_an_allowed_host_is_served(tmp_path):
    app = create_app(tmp_path / "c", allowed_hosts=["trainer.lab"])
    with app.test_client() as c:
        assert c.get("/status", headers={"Host": "trainer.lab:5002"}).status_code == 200


# --- 8: paths named by a client stay inside the checkpoint directory ---------------------------
def test_client_named_paths_stay_inside_the_checkpoint_directory(wait_for_status, client, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / ".tmp-victim").write_text("someone's save in progress")
    for value in (str(outside / "x.pth"), "../elsewhere/x.pth", "/etc/hostname"):
        r = client.post("/start_train", json={**TINY, "pretrained_encoder": value})
        assert r.status_code == 400 and "pretrained_encoder" in r.get_json()["error"], value
    assert (outside / ".tmp-victim").read_text() == "someone's save in progress"  # no recovery ran there
    missing = client.post("/start_train", json={**TINY, "pretrained_encoder": "nope.pth"})
    assert missing.status_code == 400 and "no file 'nope.pth'" in missing.get_json()["error"]
    assert client.post("/start_train", json=TINY).status_code == 200
    wait_for_status(client, lambda s: s["batch"] >= 1)
    r = client.post("/save_checkpoint", json={"name": "ok\n"})
    assert r.status_code == 400 and "name" in r.get_json()["error"]


# --- 9: bad values are JSON 400s naming the field ------------------------------------------------
@pytest.mark.parametrize(
    "change, field",
    [
        ({"hidden_dim": 100_000_000}, "hidden_dim"),
        ({"batch_size": 10**9}, "batch_size"),
        ({"dataset_version": "arc-agi-7"}, "dataset_version"),
        ({"max_grids": 2}, "max_grids"),
        ({"task_type": "puzzle_classification", "max_grids": 10}, "max_grids"),
        ({"learning_rate": "inf"}, "learning_rate"),
    ],
)
def test_bad_values_are_json_400_naming_the_field(client, change, field):
    r = client.post("/start_train", json={**TINY, **change})
    assert r.status_code == 400 and r.is_json and field in r.get_json()["error"], r.data


def test_a_chunked_body_over_the_limit_is_413(tmp_path):
    """Through a real socket: werkzeug's test client cannot send chunked bodies."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_app(tmp_path / "c"), threaded=True)
    port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        chunk = b"x" * 8192
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
        head = (f"POST /start_train HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + body)
            reply = sock.recv(4096).decode(errors="replace")
        assert reply.split()[1] == "413", reply
    finally:
        server.shutdown()


# --- 10: a full disk during a save --------------------------------------------------------------
def test_a_failed_save_is_reported_and_training_goes_on(wait_for_status, client, monkeypatch):
    import trainer_core.checkpoint.manager as manager_module

    real = manager_module.commit_file

    def disk_full(target, payload, fields):
        if "full_disk" in str(target):
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target, payload, fields)

    monkeypatch.setattr(manager_module, "commit_file", disk_full)
    assert client.post("/start_train", json=TINY).status_code == 200
    wait_for_status(client, lambda s: s["batch"] >= 2)
    assert client.post("/save_checkpoint", json={"name": "before"}).status_code == 200
    wait_for_status(client, lambda s: (_saved(s, "before") or {}).get("state") == "written")
    assert client.post("/save_checkpoint", json={"name": "full_disk"}).status_code == 200
    status = wait_for_status(client, lambda s: (_saved(s, "full_disk") or {}).get("state") == "failed")
    assert "ENOSPC" in _saved(status, "full_disk")["error"]
    assert client.post("/save_checkpoint", json={"name": "after"}).status_code == 200
    status = wait_for_status(client, lambda s: (_saved(s, "after") or {}).get("state") == "written")
    assert status["mode"] == "training" and not status["error"]
    assert torch.load(client.checkpoints / "before.pth", weights_only=True)["batch"] >= 2
    assert not (client.checkpoints / "full_disk.pth").exists()


# --- 11: a stopped pretraining keeps the complete encoder -------------------------------------
def test_a_stopped_pretraining_never_replaces_a_complete_encoder(wait_for_status, client):
    quick = {**TINY, "pretrain_task": "binary", "pretrain_epochs": 1, "batches_per_epoch": 5}
    assert client.post("/start_pretrain", json=quick).status_code == 200
    wait_for_status(client, lambda s: s["mode"] == "finished")
    complete = client.checkpoints / "pretrained_encoder_binary.pth"
    before = complete.read_bytes()
    longer = {**quick, "pretrain_epochs": 50, "batches_per_epoch": 200}
    # "finished" is shown while the session's thread still closes its run: 409 (busy) until it is gone
    deadline = time.monotonic() + 30
    while (code := client.post("/start_pretrain", json=longer).status_code) == 409 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert code == 200
    wait_for_status(client, lambda s: s["mode"] == "pretraining" and s["batch"] >= 2)
    client.post("/stop", json={})
    wait_for_status(client, lambda s: s["mode"] in ("stopped", "finished"))
    assert complete.read_bytes() == before
    stopped = torch.load(client.checkpoints / "pretrained_encoder_binary_stopped.pth", weights_only=True)
    assert stopped["complete"] is False
