"""c2v train: determinism, bit-identical resume, checkpoint contents, safe loading, analysis."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from choice2vec import checkpoints as ck
from choice2vec.cli import cli

TINY = [
    "--set", "model.d_model=32", "--set", "model.ff_dim=64", "--set", "model.window=32", "--set", "model.heads=2",
    "--set", "data.participants=8", "--set", "data.trials_per_participant=96", "--set", "data.cluster_trials=300",
    "--set", "training.warmup_epochs=10", "--set", "training.distractors=40", "--no-progress",
]  # fmt: skip


def _train(*args):
    result = CliRunner().invoke(cli, ["train", *[str(a) for a in args], *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("c2v") / "run"
    _train("--epochs", 40, "--log-every", 10, "--checkpoint-every", 20, "--output-dir", out)
    return out


def _history(path):
    return json.loads((path / "checkpoint.json").read_text())["training_history"]


def test_checkpoints_hold_the_seed_contents_without_pickle(run):
    names = sorted(p.name for p in run.glob("checkpoint_epoch_*"))
    assert names == ["checkpoint_epoch_000020", "checkpoint_epoch_000040"]
    last = run / "checkpoint_epoch_000040"
    loaded = ck.load(last)
    assert loaded.epoch == 40 and loaded.model_config["d_model"] == 32
    assert set(loaded.clustering["algorithms"]) == {
        "kmeans", "minibatch_kmeans", "gaussian_mixture", "bayesian_gaussian_mixture", "agglomerative", "spectral", "birch", "hdbscan",
    }  # fmt: skip
    assert {"majority", "raw_kmeans", "oracle"} <= set(loaded.clustering["baselines"])
    assert loaded.representations.shape[1] == 256
    assert set(np.unique(loaded.arrays["true_states"])) == {"engaged", "disengaged"}
    # the model rebuilds from its config and gives the stored representations' width
    import jax.numpy as jnp

    model = loaded.model()
    reps = model.apply(loaded.params, jnp.zeros((1, 32, 4)), jnp.zeros((1, 32), bool), method=type(model).represent)
    assert reps.shape == (1, 32, 256)
    # nothing in the directory is a pickle
    for path in last.iterdir():
        assert not path.read_bytes()[:2] == b"\x80\x04"


def test_figure_has_four_rows(run):
    from PIL import Image

    figure = run / "checkpoint_epoch_000040" / "checkpoint_epoch_000040_visualization.png"
    image = np.asarray(Image.open(figure).convert("L"))
    assert image.shape[0] > image.shape[1] * 0.8  # a tall 4-row page
    # rows of axes: horizontal bands that contain dark plot frames; the summary row is text
    dark_rows = (image < 100).mean(1)
    bands = np.split(dark_rows, 4)
    assert all(band.max() > 0.2 for band in bands[:3])  # three rows of framed plots
    assert bands[3].max() > 0.005  # and the summary text


def test_figure_has_no_overprinted_ticks_and_coherence_as_categories(run):
    from choice2vec.figures import _pyplot, build_checkpoint_figure

    loaded = ck.load(run / "checkpoint_epoch_000040")
    fig = build_checkpoint_figure(loaded.clustering, loaded.arrays, loaded.training_history)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            assert not any(p.overlaps(q) for i, p in enumerate(boxes) for q in boxes[i + 1 :]), (ax.get_title(), [t.get_text() for t in axis.get_ticklabels()])
    (choice,) = [ax for ax in fig.axes if ax.get_title() == "Choice accuracy"]
    levels = np.unique(loaded.arrays["difficulty"])
    assert [t.get_text() for t in choice.get_xticklabels()] == [f"{c:g}" for c in levels] and choice.get_xscale() == "linear"
    # no large empty margin: the outermost axes reach close to the page's edges
    boxes = [ax.get_position() for ax in fig.axes if ax.get_visible()]
    assert min(b.x0 for b in boxes) < 0.06 and max(b.x1 for b in boxes) > 0.94
    _pyplot().close(fig)


def test_same_seed_same_metrics(run, tmp_path):
    again = tmp_path / "again"
    _train("--epochs", 40, "--log-every", 10, "--checkpoint-every", 20, "--output-dir", again)
    assert _history(again / "checkpoint_epoch_000040") == _history(run / "checkpoint_epoch_000040")
    a = json.loads((again / "checkpoint_epoch_000040" / ck.RESULTS_JSON).read_text())
    b = json.loads((run / "checkpoint_epoch_000040" / ck.RESULTS_JSON).read_text())
    assert a["best_accuracy"] == b["best_accuracy"]


def test_resume_after_an_interruption_is_bit_identical(run, tmp_path):
    interrupted = tmp_path / "interrupted"
    shutil.copytree(run, interrupted)
    shutil.rmtree(interrupted / "checkpoint_epoch_000040")  # the run died between the two checkpoints
    result = CliRunner().invoke(cli, ["train", "--resume", str(interrupted), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.output
    assert _history(interrupted / "checkpoint_epoch_000040") == _history(run / "checkpoint_epoch_000040")
    a = (interrupted / "checkpoint_epoch_000040" / ck.WEIGHTS).read_bytes()
    assert a == (run / "checkpoint_epoch_000040" / ck.WEIGHTS).read_bytes()


def test_codebook_perplexity_stays_above_a_quarter_of_its_maximum(run):
    history = _history(run / "checkpoint_epoch_000040")
    config = json.loads((run / "checkpoint_epoch_000040" / "checkpoint.json").read_text())["model_config"]
    maximum = config["groups"] * config["codes"]
    assert all(row["perplexity"] > maximum / 4 for row in history)


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    old = tmp_path / "old_run" / "checkpoint_epoch_010000"
    old.mkdir(parents=True)
    (old / ck.LEGACY_WEIGHTS).write_bytes(pickle.dumps({"params": Payload(), "epoch": 10000}))
    result = CliRunner().invoke(cli, ["analyze", "--checkpoint", str(old)])
    assert result.exit_code != 0 and "pickle" in result.output and "--trust-pickle" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()
    listed = CliRunner().invoke(cli, ["analyze", "--training-dir", str(tmp_path / "old_run")])
    assert listed.exit_code == 0 and "old pickle checkpoint" in listed.output and not marker.exists()


def test_analyze_reports_missing_and_corrupt_checkpoints_and_goes_on(run, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged)
    first = damaged / "checkpoint_epoch_000020"
    data = bytearray((first / ck.RESULTS_NPZ).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (first / ck.RESULTS_NPZ).write_bytes(bytes(data))
    (damaged / "checkpoint_epoch_000030").mkdir()  # a directory the run never finished
    result = CliRunner().invoke(cli, ["analyze", "--training-dir", str(damaged)])
    assert result.exit_code == 0, result.output
    assert "checkpoint_epoch_000020" in result.output and "corrupt" in result.output
    assert "checkpoint_epoch_000030" in result.output and "incomplete" in result.output
    assert "best epoch: 40" in result.output
    assert (damaged / "training_progress_comparison.png").stat().st_size > 10_000
    listing = CliRunner().invoke(cli, ["analyze", "--list", "--root", str(tmp_path), "--json"])
    assert listing.exit_code == 0 and json.loads(listing.output)[0]["checkpoints"] == 3


def test_core_lists_the_run_with_its_headline(run):
    from trainer_core.testing import run_core

    result = run_core(["list-checkpoints", str(run), "--json"])
    rows = json.loads(result.output)
    assert [r["epoch"] for r in rows] == [20, 40]
    assert all(r["layout"] == "choice2vec.checkpoint" and "best_accuracy" in r["metrics"] for r in rows)
    for r in rows:  # the gap to the oracle, listed with the accuracy
        oracle = json.loads((Path(r["path"]) / ck.RESULTS_JSON).read_text())["baselines"]["oracle"]
        assert r["metrics"]["gap_to_oracle"] == pytest.approx(oracle - r["metrics"]["best_accuracy"])


def test_analyze_lists_the_gap_to_the_oracle(run):
    result = CliRunner().invoke(cli, ["analyze", "--training-dir", str(run), "--json"])
    assert result.exit_code == 0, result.output
    for row in json.loads(result.output)["checkpoints"]:
        assert row["gap_to_oracle"] == pytest.approx(row["baselines"]["oracle"] - row["best_accuracy"])
    text = CliRunner().invoke(cli, ["analyze", "--training-dir", str(run)]).output
    assert " gap " in text.splitlines()[0]


def test_representation_depends_on_neighbouring_trials():
    import jax
    import jax.numpy as jnp

    from choice2vec.model import Choice2Vec
    from choice2vec.objective import make_representer

    model = Choice2Vec(d_model=32, ff_dim=64, heads=2, window=32)
    params = model.init(jax.random.key(0), jnp.zeros((1, 32, 4)), jnp.zeros((1, 32), bool))
    x = np.random.default_rng(0).normal(size=(1, 96, 4)).astype(np.float32)
    represent = make_representer(model, 32)
    base = represent(params, x)
    changed = x.copy()
    changed[0, 50] += 1.0  # one neighbour of trial 49 and 51
    after = represent(params, changed)
    assert not np.allclose(after[0, 49], base[0, 49]) and not np.allclose(after[0, 51], base[0, 51])


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(run, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    killed = tmp_path / "killed"
    args = ["--epochs", 40, "--log-every", 10, "--checkpoint-every", 20, "--output-dir", killed, *TINY]
    code = "from choice2vec.cli import main; import sys; sys.argv = ['c2v', 'train'] + sys.argv[1:]; main()"
    process = subprocess.Popen([sys.executable, "-c", code, *[str(a) for a in args]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoint_epoch_000020" / "manifest.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "checkpoint_epoch_000040").exists()
    result = CliRunner().invoke(cli, ["train", "--resume", str(killed), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _history(killed / "checkpoint_epoch_000040") == _history(run / "checkpoint_epoch_000040")
    assert (killed / "checkpoint_epoch_000040" / ck.WEIGHTS).read_bytes() == (run / "checkpoint_epoch_000040" / ck.WEIGHTS).read_bytes()


def test_training_chunk_compiles_once_and_is_a_pure_function_of_the_seed():
    import jax

    from choice2vec.model import Choice2Vec
    from choice2vec.objective import init_state, make_optimizer, make_train_chunk

    objective = {
        "learning_rate": 1e-3, "warmup_epochs": 2, "epochs": 20, "final_lr_fraction": 0.1, "weight_decay": 0.0, "window": 16,
        "batch_size": 4, "mask_prob": 0.3, "mask_span": 1, "distractors": 8, "kappa": 0.1, "contrastive_weight": 0.1,
        "diversity_weight": 0.1, "max_temperature": 2.0, "min_temperature": 0.5, "temperature_decay": 0.999,
    }  # fmt: skip
    model = Choice2Vec(d_model=16, ff_dim=32, heads=2, window=16, repr_dim=16, codes=8)
    optimizer = make_optimizer(objective)
    data = np.random.default_rng(0).normal(size=(3, 40, 4)).astype(np.float32)
    chunk = make_train_chunk(model, optimizer, data, objective)
    state = init_state(model, optimizer, objective, 0)
    for _ in range(3):
        state, metrics = chunk(state, 5)
    assert int(state["epoch"]) == 15 and chunk._cache_size() == 1  # one compilation for every call
    again = init_state(model, optimizer, objective, 0)
    for _ in range(3):
        again, metrics_again = chunk(again, 5)
    same = jax.tree_util.tree_map(lambda a, b: bool((np.asarray(a) == np.asarray(b)).all()), state["params"], again["params"])
    assert all(jax.tree_util.tree_leaves(same))


def test_resume_with_another_config_is_refused_and_changes_nothing(run):
    before = sorted(p.name for p in run.iterdir())
    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--set", "model.d_model=64"])  # epochs may change: train longer
    assert result.exit_code == 2 and "another config" in result.output and "model.d_model 32 -> 64" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in run.iterdir()) == before


def test_fewer_clustering_algorithms_run_only_those(tmp_path):
    """The seed's 'use fewer algorithms': analysis.algorithms picks them (raw k-means stays a baseline)."""
    out = tmp_path / "few"
    _train("--epochs", 20, "--log-every", 10, "--checkpoint-every", 20, "--output-dir", out, "--set", "analysis.algorithms=[kmeans, birch]")
    loaded = ck.load(out / "checkpoint_epoch_000020")
    assert set(loaded.clustering["algorithms"]) == {"kmeans", "birch"} and "raw_kmeans" in loaded.clustering["baselines"]
    bad = CliRunner().invoke(cli, ["train", "--set", "analysis.algorithms=[telepathy]", *TINY])
    assert bad.exit_code == 2 and "analysis.algorithms" in bad.output
