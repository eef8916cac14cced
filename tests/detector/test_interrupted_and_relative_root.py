"""A killed `detector train` resumes from its newest verified checkpoint (nothing verified is
deleted), and a relative --root means the same folder when stages are recorded and checked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

from click.testing import CliRunner

from bongard_detector.cli import cli
from bongard_detector.pipeline import Pipeline, make_config
from trainer_core import list_committed, verify_checkpoint

TINY = dict(dataset_size=24, test_size=8, real_size=8, image_size=128, classifier_steps=2, workers=0)

RUN = textwrap.dedent(
    """
    import sys
    from bongard_detector.pipeline import Pipeline, make_config
    config = make_config("quick", dataset_size=24, test_size=8, real_size=8, image_size=128, classifier_steps=2, workers=0, epochs=int(sys.argv[2]))
    Pipeline(config, sys.argv[1], echo=print, progress=False).run()
    """
)


def test_a_killed_training_resumes_from_its_newest_verified_checkpoint(tmp_path):
    root = tmp_path / "det"
    epochs_dir = root / "models" / "quick" / "epochs"
    process = subprocess.Popen([sys.executable, "-c", RUN, str(root), "6"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while not (epochs_dir / "epoch_002" / "manifest.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    kept = [c for c in list_committed(epochs_dir) if verify_checkpoint(c.path).status == "ok"]
    assert kept, "no verified epoch checkpoint before the kill"
    newest = max(c.epoch for c in kept)
    lines = []
    pipeline = Pipeline(make_config("quick", **TINY, epochs=6), root, echo=lines.append, progress=False)
    results = pipeline.run()
    assert results["work_done"]["training"] is True
    assert any("resuming the interrupted training" in line for line in lines), lines
    assert any(f"resuming after epoch {newest}" in line for line in lines), lines
    assert [h["epoch"] for h in results["training"]["history"]] == list(range(newest + 1, 7))


def test_more_epochs_train_longer_and_another_config_sets_the_old_model_directory_aside(tmp_path):
    root = tmp_path / "det"
    Pipeline(make_config("quick", **TINY, epochs=1), root, echo=lambda line: None, progress=False).run()
    lines = []
    longer = Pipeline(make_config("quick", **TINY, epochs=2), root, echo=lines.append, progress=False).run()
    assert any("resuming after epoch 1" in line for line in lines), lines
    assert [h["epoch"] for h in longer["training"]["history"]] == [2] and not list((root / "models").glob("quick.replaced-*"))
    lines = []
    Pipeline(make_config("quick", **{**TINY, "learning_rate": 1e-3}, epochs=2), root, echo=lines.append, progress=False).run()
    aside = sorted((root / "models").glob("quick.replaced-*"))
    assert len(aside) == 1 and (aside[0] / "final" / "manifest.json").is_file()
    assert verify_checkpoint(aside[0] / "final").status == "ok"
    assert any("kept as" in line for line in lines)


def test_a_relative_root_is_recorded_and_checked_as_the_same_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--profile", "quick", "--root", "det", "--dataset-size", "24", "--epochs", "1", "--classifier-steps", "2",
            "--image-size", "128", "--workers", "0", "--json"]  # fmt: skip
    import bongard_detector.pipeline as pipeline_module

    quick = pipeline_module.PROFILES["quick"]
    from dataclasses import replace

    monkeypatch.setitem(pipeline_module.PROFILES, "quick", replace(quick, test_size=8, real_size=8))
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    for stage in ("data_generation", "training", "evaluation"):
        record = json.loads((tmp_path / "det" / "checkpoints" / f"{stage}.json").read_text())
        assert all(not o["path"].startswith("det/") for o in record["outputs"]), record["outputs"]
    status = CliRunner().invoke(cli, ["status", "--root", "det"])
    assert status.exit_code == 0 and status.output.count("✅") == 3, status.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and json.loads(again.output)["work_done"] == {
        "data_generation": False,
        "training": False,
        "evaluation": False,
    }
