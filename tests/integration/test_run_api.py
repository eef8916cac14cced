"""Every package trains through core's run API: a tiny real run of each trainer, then the claims.

For each package: its run directory has ``metrics.jsonl``; every manifest it wrote carries a config
hash and the model's name and size; ``trainer_core.load_model`` returns a model whose forward pass
runs; the contract kit (list, show, verify, load, a truncated copy caught) holds on the real
checkpoint; and one listing spans all of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from trainer_core import load_model  # noqa: E402
from trainer_core.plugins import get_plugin_manager  # noqa: E402
from trainer_core.testing import assert_checkpoint_contract, run_core  # noqa: E402

pytestmark = pytest.mark.slow


def _example(root: Path) -> tuple[Path, Path]:
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    summary = train(ExampleConfig(epochs=2, samples=300, batch_size=60, async_save=False), root, progress=False)
    return root, Path(summary["latest_checkpoint"])


def _vizwatch(root: Path) -> tuple[Path, Path]:
    from vizwatch.trainer.config import VizwatchConfig
    from vizwatch.trainer.train import train

    summary = train(VizwatchConfig(samples=600, epochs=2, batch_size=128, hidden_size=16), root, progress=False)
    return root, Path(summary["best_checkpoint"])


def _vqvae(root: Path) -> tuple[Path, Path]:
    from spinlock_vqvae.config import VQVAEConfig
    from spinlock_vqvae.dataset import generate
    from spinlock_vqvae.train import train

    data = generate(root.parent / "vq.h5", samples=240, seed=0, progress=False)
    config = VQVAEConfig(input=str(data), output_dir=str(root), epochs=2, embedding_dim=16, hidden_size=32, batch_size=64, max_clusters=6,
                         val_every_n_epochs=1)  # fmt: skip
    train(config, progress=False)
    return root, root / "last_model.pt"


def _choice2vec(root: Path) -> tuple[Path, Path]:
    from choice2vec.config import Choice2VecConfig
    from choice2vec.train import train

    config = Choice2VecConfig(
        model=dict(d_model=32, ff_dim=64, window=32, heads=2),
        data=dict(participants=8, trials_per_participant=96, cluster_trials=300),
        training=dict(epochs=20, log_every=10, checkpoint_every=20, warmup_epochs=10, distractors=40),
    )
    summary = train(config, output_dir=root, progress=False, echo=lambda line: None)
    return root, Path(summary["checkpoints"][-1]["path"])


def _arc(root: Path) -> tuple[Path, Path]:
    from arc_comm.config import ArcConfig
    from arc_comm.session import TrainingSession

    config = ArcConfig(hidden_dim=16, latent_dim=16, embedding_dim=8, num_conv_layers=2, max_grid_size=6, max_grids=200, batch_size=16,
                       epochs=1, batches_per_epoch=4, val_grids=50)  # fmt: skip
    session = TrainingSession(config, root / "checkpoints")
    try:
        session.run()
        session.save_now("tiny")
    finally:
        session.close()
    pretraining = TrainingSession(config.model_copy(update={"pretrain_task": "binary", "pretrain_epochs": 1}), root / "checkpoints")
    try:
        pretraining.pretrain()
    finally:
        pretraining.close()
    return sorted((root / "checkpoints" / "runs").iterdir())[0], root / "checkpoints" / "tiny.pth"


def _detector(root: Path) -> tuple[Path, Path]:
    from bongard_detector.pipeline import Pipeline, make_config

    config = make_config("quick", dataset_size=24, test_size=8, real_size=8, image_size=128, epochs=1, classifier_steps=2, workers=0)
    Pipeline(config, root, echo=lambda line: None, progress=False).run()
    final = next(root.rglob("final"))
    return final.parent, final


TRAINERS = {
    "trainer-core": _example,
    "vizwatch": _vizwatch,
    "spinlock-vqvae": _vqvae,
    "choice2vec": _choice2vec,
    "arc-comm": _arc,
    "bongard-detector": _detector,
}


def _more_layouts(runs) -> dict[str, tuple[Path, object]]:
    """The other engine layouts the tiny runs wrote, with an input for their model."""
    arc_home, detector_home = runs["arc-comm"][0], runs["bongard-detector"][0]
    return {
        "arc.pretrained_encoder": (arc_home / "checkpoints" / "pretrained_encoder_binary.pth", torch.zeros(2, 6, 6, dtype=torch.long)),
        "detector.classifier": (next(detector_home.rglob("classifier/step_*")), torch.zeros(2, 3, 64, 64)),
    }


@pytest.mark.parametrize("layout", ["arc.pretrained_encoder", "detector.classifier"])
def test_the_other_layouts_keep_the_contract_and_load(runs, layout, tmp_path):
    path, example = _more_layouts(runs)[layout]
    assert_checkpoint_contract(path, layout=layout, tmp_path=tmp_path)
    with torch.no_grad():
        assert load_model(path)(example).shape[0] == 2


def _forward(package: str, model, checkpoint: Path):
    """One forward pass of each package's model on inputs of the right shape."""
    with torch.no_grad():
        if package == "trainer-core":
            return model(torch.zeros(4, 2))
        if package == "vizwatch":
            return model(torch.zeros(4, model.encoder[0].in_features))
        if package == "spinlock-vqvae":
            return model([torch.zeros(4, d) for d in model.group_sizes])["recon"]
        if package == "choice2vec":
            import jax.numpy as jnp

            return model(jnp.zeros((2, model.window, 4)), jnp.ones((2, model.window), bool))
        if package == "arc-comm":
            return model.encoder(torch.zeros(2, 6, 6, dtype=torch.long))
        if package == "bongard-detector":
            return model([torch.rand(3, 128, 128)])
    raise AssertionError(package)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for package, make in TRAINERS.items():
        home = root / package.replace("-", "_")
        made[package] = (home, *make(home))
    return made


@pytest.mark.parametrize("package", sorted(TRAINERS))
def test_load_model_runs_a_forward_pass(runs, package):
    _, _, checkpoint = runs[package]
    model = load_model(checkpoint)
    out = _forward(package, model, checkpoint)
    assert out is not None


@pytest.mark.parametrize("package", sorted(TRAINERS))
def test_run_dir_has_metrics_and_manifests_have_config_hash_and_model(runs, package, tmp_path):
    home, run_dir, checkpoint = runs[package]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records and all("step" in r for r in records)
    manifests = [json.loads(p.read_text()) for p in home.rglob("*manifest.json")]
    mine = [m for m in manifests if m["package"] == package]
    assert mine and all(m["config_hash"] for m in mine), [m["name"] for m in mine if not m["config_hash"]]
    assert all(m["extra"]["model"]["parameters"] > 0 for m in mine if "model" in m["extra"])
    layout = json.loads(run_core(["show", str(checkpoint), "--json"]).stdout)["layout"]
    assert_checkpoint_contract(checkpoint, layout=layout, tmp_path=tmp_path)


def test_one_listing_spans_every_package(runs, monkeypatch):
    root = next(iter(runs.values()))[0].parent
    rows = json.loads(run_core(["list-checkpoints", str(root), "--json"]).stdout)
    monkeypatch.setenv("COLUMNS", "100")
    table = run_core(["list-checkpoints", str(root)]).stdout
    assert max(len(line) for line in table.splitlines()) <= 100
    for row in rows:  # each row's first headline metric is visible in the 100-column table
        if row["headline"] and row["headline"][0] in row["metrics"] and not isinstance(row["metrics"][row["headline"][0]], dict):
            assert f"{row['headline'][0]}=" in table, row["headline"]
    assert {r["package"] for r in rows} >= set(TRAINERS)
    assert all(r["status"] == "ok" for r in rows if r["kind"] != "visualization"), [(r["path"], r["problems"]) for r in rows if r["status"] != "ok"]
    shown = {r["package"] for r in rows if r["headline"] and any(k in r["metrics"] for k in r["headline"])}
    assert shown >= set(TRAINERS), set(TRAINERS) - shown  # every package's headline metrics are in its checkpoints
    by_layout: dict[str, list[dict]] = {}
    for r in rows:
        by_layout.setdefault(r["layout"], []).append(r)
    for layout, found in by_layout.items():  # each headline metric a layout names is in a real checkpoint of it
        named = set(found[0]["headline"])
        assert any(named <= set(r["metrics"]) for r in found), (layout, named, [sorted(r["metrics"]) for r in found])


def test_plugins_json_lists_layouts_schemas_and_models_for_every_package():
    report = json.loads(run_core(["plugins", "--json"], get_plugin_manager(warn=False)).stdout)
    by_dist = {}
    for entry in report["plugins"]:
        by_dist.setdefault(entry["distribution"], []).append(entry)
    for dist in ("spinlock-vqvae", "choice2vec", "arc-comm", "bongard-detector", "vizwatch"):
        (entry,) = by_dist[dist]
        assert entry["layouts"] and entry["models"] and entry["config_schemas"], entry
    assert all(entry["hooks"] for entry in report["plugins"])
