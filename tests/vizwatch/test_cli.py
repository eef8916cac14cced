"""The `vizwatch` command: clear usage errors, animations, run listing, core's listing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from trainer_core.testing import run_core
from vizwatch.cli import cli


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--viz-method", "mds"], "'mds' is not one of 'tsne', 'umap', 'pca'"),
        (["--viz-every", "0"], "key 'viz_every': input should be greater than or equal to 1"),
        (["--classes", "7"], "the xray dataset has 4 classes"),
    ],
)
def test_bad_options_exit_2_with_one_clear_line(tmp_path, args, needle):
    result = _run("train", "--output", tmp_path / "out", "--visualize-training", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    result = _run(
        "train",
        "--samples",
        900,
        "--epochs",
        6,
        "--visualize-training",
        "--viz-every",
        3,
        "--viz-method",
        "pca",
        "--viz-root",
        root / "viz",
        "--output",
        root / "run",
        "--no-progress",
        "--set",
        "viz_worker=thread",
    )
    assert result.exit_code == 0, result.output
    return root


def test_animate_gif_and_mp4_without_imagemagick(trained):
    run = trained / "viz" / "run_001"
    assert _run("animate", run, "--fps", 4).exit_code == 0
    with Image.open(run / "training_animation.gif") as gif:
        assert gif.n_frames == 4  # epochs 1, 3, 5, 6
    result = _run("animate", run, "--format", "mp4")
    assert result.exit_code == 0, result.output
    assert (run / "training_evolution.mp4").stat().st_size > 1000
    missing = _run("animate", trained / "nope")
    assert missing.exit_code == 2 and missing.output.startswith("error: no run folder")


def test_runs_listing_and_core_listing(trained):
    (row,) = json.loads(_run("runs", trained / "viz", "--json").stdout)
    assert row["frames"] == 4 and row["last_epoch"] == 6 and row["status"] == "completed" and row["best_val_acc"] > 0.5
    listed = json.loads(run_core(["list-checkpoints", str(trained), "--json"]).stdout)
    kinds = {(r["layout"], r["status"]) for r in listed}
    assert ("vizwatch.run", "ok") in kinds and ("vizwatch.classifier", "ok") in kinds
    verified = run_core(["verify", str(trained / "viz")])
    assert verified.exit_code == 0 and verified.output.startswith("ok "), verified.output


def _listed_run(path):
    (row,) = [r for r in json.loads(run_core(["list-checkpoints", str(path), "--json"]).stdout) if r["layout"] == "vizwatch.run"]
    return row


def test_core_verify_hashes_the_frames_a_run_recorded(trained, tmp_path):
    import shutil

    run = shutil.copytree(trained / "viz" / "run_001", tmp_path / "viz" / "run_001")
    frames = sorted(run.glob("epoch_*.png"))
    assert sorted(_listed_run(run)["files"]) == [f.name for f in frames]
    damaged = bytearray(frames[1].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: the listing cannot tell, verify's hash can
    frames[1].write_bytes(bytes(damaged))
    assert _listed_run(run)["status"] == "ok"
    verified = run_core(["verify", str(run)])
    assert verified.exit_code == 1 and f"{frames[1].name}: sha256 differs from its metadata" in verified.output
    frames[2].write_bytes(frames[2].read_bytes()[:100])  # cut short: the listing sees it
    row = _listed_run(run)
    assert row["status"] == "corrupt" and f"{frames[2].name} is 100 bytes, run_metadata.json says" in " ".join(row["problems"])
    frames[3].unlink()
    assert f"missing file {frames[3].name}" in _listed_run(run)["problems"]
    meta = json.loads((run / "run_metadata.json").read_text())
    meta["frames"][0]["file"] = "../../elsewhere.png"  # a damaged record never sends verify outside the run
    (run / "run_metadata.json").write_text(json.dumps(meta))
    assert _listed_run(run)["problems"] == ["run_metadata.json: file name '../../elsewhere.png' is not inside the checkpoint"]
    (run / "run_metadata.json").write_text(json.dumps({**meta, "frames": "none"}))
    row = _listed_run(run)
    assert row["status"] == "corrupt" and row["problems"] == ["run_metadata.json has no list of frames (damaged or not vizwatch's)"]


def test_a_run_without_recorded_hashes_is_listed_unverified(trained, tmp_path):
    import shutil

    run = shutil.copytree(trained / "viz" / "run_001", tmp_path / "viz" / "run_001")
    meta = json.loads((run / "run_metadata.json").read_text())
    for frame in meta["frames"]:
        del frame["sha256"]  # as vizwatch wrote them before it recorded hashes
    (run / "run_metadata.json").write_text(json.dumps(meta))
    assert _listed_run(run)["status"] == "unverified"
    verified = run_core(["verify", str(run)])
    assert verified.exit_code == 1 and "records no hashes of its frames" in verified.output  # verify never vouches for unhashed frames


def test_create_animation_script_runs_without_the_venv_on_path(trained):
    import os
    import subprocess

    (run,) = sorted((trained / "viz").glob("run_*"))
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", str(run / "create_animation.sh"), "--output", "from_script.gif"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (run / "from_script.gif").stat().st_size > 1000


def test_resuming_a_finished_run_reports_its_metrics(trained):
    result = _run("train", "--resume", trained / "run", "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["metrics"]["val_acc"] > 0
