"""Train longer: resuming a finished run with a larger epoch count continues it (the way people
extend a run), the schedule is recomputed over the new length, and only keys that change what
was already trained refuse the resume, named in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from trainer_core import list_committed  # noqa: E402
from trainer_core.cli import build_cli  # noqa: E402


def _run_ids(folder):
    return {c.extra.get("run_id") for c in list_committed(folder)}


def test_example_train_longer_and_a_changed_architecture_is_named(tmp_path):
    core = build_cli()
    out = tmp_path / "run"
    first = CliRunner().invoke(core, ["example-train", "--output", str(out), "--epochs", "2", "--set", "samples=300", "--no-progress", "--json"])
    assert first.exit_code == 0, first.output
    longer = CliRunner().invoke(core, ["example-train", "--resume", str(out), "--epochs", "4", "--no-progress", "--json"])
    assert longer.exit_code == 0, longer.output
    summary = json.loads(longer.stdout)
    assert summary["epoch"] == 4 and len(_run_ids(out / "checkpoints")) == 1
    wider = CliRunner().invoke(core, ["example-train", "--resume", str(out), "--epochs", "6", "--set", "hidden_size=64", "--no-progress"])
    assert wider.exit_code == 2 and "hidden_size 128 -> 64" in wider.output and "only epochs" in wider.output


def test_vizwatch_train_longer_recomputes_the_cosine_schedule(tmp_path):
    from vizwatch.cli import cli

    out = tmp_path / "run"
    base = ["--samples", "600", "--set", "hidden_size=16", "--no-progress", "--json"]
    assert CliRunner().invoke(cli, ["train", "--output", str(out), "--epochs", "2", *base]).exit_code == 0
    longer = CliRunner().invoke(cli, ["train", "--resume", str(out), "--epochs", "4", "--no-progress", "--json"])
    assert longer.exit_code == 0, longer.output
    assert json.loads(longer.stdout)["epoch"] == 4
    checkpoints = list_committed(out / "checkpoints")
    newest = torch.load(f"{checkpoints[-1].path}/trainer_state.pt", weights_only=True)
    assert newest["scheduler"]["T_max"] == 4  # the cosine runs over the new length
    third = next(c for c in checkpoints if c.epoch == 3)
    state = torch.load(f"{third.path}/trainer_state.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] > 0  # the finished run ended at 0; the longer one goes on learning


def test_c2v_train_longer(tmp_path):
    from choice2vec.cli import cli

    tiny = ["--set", "model.d_model=32", "--set", "model.ff_dim=64", "--set", "model.window=32", "--set", "model.heads=2",
            "--set", "data.participants=8", "--set", "data.trials_per_participant=96", "--set", "data.cluster_trials=300",
            "--set", "training.warmup_epochs=10", "--set", "training.distractors=40", "--set", "analysis.algorithms=[kmeans]",
            "--no-progress"]  # fmt: skip
    out = tmp_path / "run"
    first = CliRunner().invoke(cli, ["train", "--epochs", "20", "--log-every", "10", "--checkpoint-every", "20", "--output-dir", str(out), *tiny])
    assert first.exit_code == 0, first.output
    longer = CliRunner().invoke(cli, ["train", "--resume", str(out), "--epochs", "40", "--log-every", "10", "--checkpoint-every", "20",
                                      "--no-progress"])  # fmt: skip
    assert longer.exit_code == 0, longer.output
    assert sorted(p.name for p in out.glob("checkpoint_epoch_*")) == ["checkpoint_epoch_000020", "checkpoint_epoch_000040"]


def test_arc_train_longer(tmp_path):
    from arc_comm.config import ArcConfig
    from arc_comm.session import TrainingSession

    tiny = dict(hidden_dim=16, latent_dim=16, embedding_dim=8, num_conv_layers=2, max_grid_size=6, max_grids=200, batch_size=16,
                batches_per_epoch=4, val_grids=50)  # fmt: skip
    session = TrainingSession(ArcConfig(**tiny, epochs=1), tmp_path)
    try:
        session.run()
        session.save_now("short")
    finally:
        session.close()
    longer = TrainingSession(ArcConfig(**tiny, epochs=3), tmp_path)
    try:
        start = longer.load(tmp_path / "short.pth")
        status = longer.run(start)  # one-cycle over 12 batches now, not 4: no "stepped too many times"
        longer.save_now("longer")
    finally:
        longer.close()
    assert status["epoch"] == 3 and torch.load(tmp_path / "longer.pth", weights_only=True)["epoch"] == 3


def test_vqvae_train_longer_from_a_moved_run(tmp_path):
    import shutil

    from spinlock_vqvae.config import VQVAEConfig
    from spinlock_vqvae.dataset import generate
    from spinlock_vqvae.train import train

    data = generate(tmp_path / "vq.h5", samples=240, seed=0, progress=False)
    tiny = dict(embedding_dim=16, hidden_size=32, batch_size=64, max_clusters=6, val_every_n_epochs=1)
    train(VQVAEConfig(input=str(data), output_dir=str(tmp_path / "run"), epochs=2, **tiny), progress=False)
    shutil.move(tmp_path / "run", tmp_path / "moved")  # paths are no part of a run's identity
    summary = train(VQVAEConfig(input=f"{tmp_path}/./vq.h5", output_dir=str(tmp_path / "moved"), epochs=3, **tiny),
                    resume_from=tmp_path / "moved" / "last_model.pt", progress=False)  # fmt: skip
    assert summary["epoch"] == 3
