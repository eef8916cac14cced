"""`arc train` never loses a run: the target is checked before any work, a killed run can resume
from its autosave, --overwrite replaces on request, and --save-as stays in the checkpoint directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from arc_comm.cli import cli

TINY = {"hidden_dim": 16, "latent_dim": 16, "embedding_dim": 8, "num_conv_layers": 2, "max_grid_size": 6, "max_grids": 200,
        "batch_size": 16, "epochs": 2, "batches_per_epoch": 4, "val_grids": 50}  # fmt: skip
SETS = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]


def _train(*args):
    return CliRunner().invoke(cli, ["train", *args, *SETS])


def test_an_existing_target_is_refused_before_any_work(tmp_path):
    (tmp_path / "final_epoch_2.pth").write_bytes(b"a finished run")
    started = time.monotonic()
    result = _train("--checkpoint-dir", str(tmp_path))
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert time.monotonic() - started < 5  # refused before loading data or training
    assert (tmp_path / "final_epoch_2.pth").read_bytes() == b"a finished run"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["../x", "sub/x", "/tmp/x", ".hidden", "bad\n"])
def test_save_as_stays_inside_the_checkpoint_directory(tmp_path, name):
    result = _train("--checkpoint-dir", str(tmp_path / "c"), "--save-as", name)
    assert result.exit_code == 2 and "--save-as" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "x.pth").exists()


def test_autosaves_resume_and_overwrite(tmp_path):
    first = _train("--checkpoint-dir", str(tmp_path), "--save-as", "done", "--json")
    assert first.exit_code == 0, first.output
    autosaves = sorted(p.name for p in tmp_path.glob("autosave_*.pth"))
    assert autosaves == ["autosave_run_001_epoch_0001.pth"]  # one per epoch, the newest kept, none after the last
    resumed = _train("--checkpoint-dir", str(tmp_path), "--save-as", "continued", "--resume", str(tmp_path / autosaves[0]), "--json")
    assert resumed.exit_code == 0, resumed.output
    assert torch.load(tmp_path / "continued.pth", weights_only=True)["epoch"] == 2
    sidecar = tmp_path / "done.pth.manifest.json"
    before = json.loads(sidecar.read_text())["extra"]["run_id"]
    again = _train("--checkpoint-dir", str(tmp_path), "--save-as", "done", "--overwrite", "--json")
    assert again.exit_code == 0 and json.loads(again.output)["epoch"] == 2
    assert json.loads(sidecar.read_text())["extra"]["run_id"] != before  # written by the new run


def _autosaved_epochs(folder) -> list[int]:
    return [int(re.search(r"_epoch_(\d+)\.pth\.manifest\.json$", p.name).group(1)) for p in folder.glob("autosave_*.pth.manifest.json")]


def test_a_killed_arc_train_leaves_a_resumable_autosave(tmp_path):
    config = {**TINY, "epochs": 100_000, "batches_per_epoch": 3}  # far more than it can train before the kill
    long = [x for k, v in config.items() for x in ("--set", f"{k}={v}")]
    arc = os.path.join(os.path.dirname(sys.executable), "arc")
    process = subprocess.Popen(
        [arc, "train", "--checkpoint-dir", str(tmp_path), *long], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while max(_autosaved_epochs(tmp_path), default=0) < 2 and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL, "arc train ended by itself before it was killed"
    assert not list(tmp_path.glob("final_*.pth")), "arc train finished before it was killed"
    saved = sorted(tmp_path.glob("autosave_*.pth"))
    assert saved, "no autosave before the kill"
    verify = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "core"), "verify", str(saved[-1])], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    from arc_comm.config import ArcConfig
    from arc_comm.session import TrainingSession

    session = TrainingSession(ArcConfig(**config), tmp_path)
    try:
        assert session.load(saved[-1]) >= 2  # the killed run continues from its autosave
    finally:
        session.close()


def test_checkpoint_info_on_an_encoder_and_fine_tuning_another_architecture(tmp_path):
    pretrain = CliRunner().invoke(cli, ["pretrain", "--checkpoint-dir", str(tmp_path), "--json", *SETS, "--set", "pretrain_epochs=1"])
    assert pretrain.exit_code == 0, pretrain.output
    info = CliRunner().invoke(cli, ["checkpoint-info", str(tmp_path / "pretrained_encoder_selection.pth"), "--info-only", "--json"])
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    assert data["kind"] == "pretrained encoder" and data["complete"] is True and data["parameters"] > 100
    assert _train("--checkpoint-dir", str(tmp_path), "--save-as", "base").exit_code == 0
    other = CliRunner().invoke(cli, ["train", "--checkpoint-dir", str(tmp_path), "--fine-tune", str(tmp_path / "base.pth"), *SETS,
                                     "--set", "hidden_dim=32"])  # fmt: skip
    assert other.exit_code == 2 and "another architecture" in other.output and "hidden_dim" in other.output
    resumed = CliRunner().invoke(cli, ["train", "--checkpoint-dir", str(tmp_path), "--resume", str(tmp_path / "base.pth"), *SETS,
                                       "--set", "hidden_dim=32"])  # fmt: skip
    assert resumed.exit_code == 2 and "another config" in resumed.output
