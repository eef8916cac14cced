"""After the tokenizer: evaluate-tokens, train-ano, and the codebooks handed to plotters."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from spinlock_vqvae.cli import cli
from spinlock_vqvae.dataset import generate
from trainer_core import get_plugin_manager, hookimpl

SMALL = ["--set", "embedding_dim=8", "--set", "hidden_size=32", "--batch-size", "64", "--set", "max_clusters=6"]
ANO = ["--epochs", "6", "--set", "hidden_size=32", "--set", "eval_every_n_epochs=2", "--no-progress"]


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    dataset = generate(root / "d.h5", samples=300, seed=2, progress=False, workers=1)
    result = _run("train-vqvae", "--input", dataset, "--output", root / "vq", "--epochs", 8, *SMALL, "--no-progress")
    assert result.exit_code == 0, result.output
    tokens = root / "tokens.h5"
    assert _run("encode-to-tokens", "--dataset", dataset, "--vqvae-model", root / "vq" / "best_model.pt", "--output", tokens, "--no-progress").exit_code == 0
    return {"root": root, "dataset": dataset, "model": root / "vq" / "best_model.pt", "tokens": tokens}


def test_evaluate_tokens_reports_every_measure_against_its_baseline(trained, tmp_path):
    out = tmp_path / "quality.json"
    result = _run("evaluate-tokens", "--dataset", trained["dataset"], "--vqvae-model", trained["model"], "--tokens", trained["tokens"],
                  "--output", out, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    overall, categories = report["overall"], report["categories"]
    assert len(categories) >= 2 and sum(c["features"] for c in categories) == overall["features"]
    # decoding the tokens (or the unquantised latent) beats predicting the mean
    assert max(overall["mse_tokens"], overall["mse_continuous"]) < overall["mse_mean"]
    assert 0 < overall["explained"] < 1
    # 32-bit features against at most log2(K) bits a token; entropy coding never costs more than fixed length
    assert overall["bits_entropy"] <= overall["bits_fixed"] + 1e-9 and overall["compression_ratio"] >= overall["compression_ratio_fixed"] > 1
    for c in categories:
        assert [lv["level"] for lv in c["levels"]] == [1, 2, 3]
        assert all(0 < lv["utilization"] <= 1 and 1 <= lv["perplexity"] <= lv["codes"] + 1e-6 for lv in c["levels"])
    assert report["discriminability_chance"] == 0.25 and 0 <= overall["discriminability_tokens"] <= 1
    assert report["parameters"] == ["kernel_scale", "kernel_smoothness", "bias_scale", "dt", "gain", "decay", "noise", "init_scale", "init_smoothness"]
    # the tokens file and encoding in memory give the same report
    again = _run("evaluate-tokens", "--dataset", trained["dataset"], "--vqvae-model", trained["model"], "--output", tmp_path / "b.json", "--json")
    assert json.loads((tmp_path / "b.json").read_text())["overall"] == overall
    table = _run("evaluate-tokens", "--dataset", trained["dataset"], "--vqvae-model", trained["model"], "--output", tmp_path / "c.json")
    assert "overall" in table.output and "compress" in table.output and again.exit_code == 0


def test_evaluate_tokens_refuses_tokens_of_another_dataset(trained, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(trained["tokens"]) as f, h5py.File(other, "w") as g:
        g["tokens"] = f["tokens"][:100]
        g["codebook_sizes"] = f["codebook_sizes"][()]
    result = CliRunner().invoke(cli, ["evaluate-tokens", "--dataset", str(trained["dataset"]), "--vqvae-model", str(trained["model"]),
                                      "--tokens", str(other), "--output", str(tmp_path / "q.json")])  # fmt: skip
    assert result.exit_code == 2 and "encode this dataset with this model" in result.output
    assert not (tmp_path / "q.json").exists()


def test_train_ano_reports_r2_against_its_baselines_and_lists_its_checkpoints(trained, tmp_path):
    out = tmp_path / "ano"
    result = _run("train-ano", "--tokens", trained["tokens"], "--dataset", trained["dataset"], "--output", out, *ANO, "--json")
    assert result.exit_code == 0, result.output
    results = json.loads((out / "ano_results.json").read_text())
    models = results["models"]
    assert set(models) == {"tokens", "raw_features", "ridge_raw_features", "mean"}
    assert set(models["tokens"]["r2"]) == set(results["parameters"]) and len(results["parameters"]) == 9
    assert abs(models["mean"]["r2_mean"]) < 0.05  # the training mean explains nothing of held-out rows
    assert results["rows"]["train"] + results["rows"]["validation"] + results["rows"]["test"] == 300
    assert results["token_to_raw_r2_ratio"] == pytest.approx(models["tokens"]["r2_mean"] / models["raw_features"]["r2_mean"])
    from trainer_core.cli import build_cli

    listed = CliRunner().invoke(build_cli(), ["list-checkpoints", str(out), "--json"])
    found = {(c["path"].rsplit("/", 1)[-1], c["layout"], c["status"]) for c in json.loads(listed.output)}
    assert {("ano_model.pt", "vqvae.ano", "ok"), ("best_ano_model.pt", "vqvae.ano", "ok")} <= found
    from trainer_core import load_model

    model = load_model(out / "best_ano_model.pt")  # through the model registry, no unpickling
    assert isinstance(model, torch.nn.Module) and model.group == 3  # codebook embeddings summed per category


def test_an_interrupted_train_ano_resumes_to_the_same_weights(trained, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = ["train-ano", "--tokens", trained["tokens"], "--dataset", trained["dataset"], "--set", "hidden_size=32",
            "--set", "eval_every_n_epochs=2", "--set", "baselines=false", "--no-progress"]  # fmt: skip
    assert _run(*args, "--output", straight, "--epochs", 6).exit_code == 0
    assert _run(*args, "--output", split, "--epochs", 4).exit_code == 0
    resumed = _run("train-ano", "--resume-from", split, "--epochs", 6, "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    a = torch.load(straight / "ano_model.pt", weights_only=True)["model_state_dict"]
    b = torch.load(split / "ano_model.pt", weights_only=True)["model_state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    again = CliRunner().invoke(cli, [str(a) for a in [*args, "--output", straight, "--epochs", 6]])
    assert again.exit_code == 2 and "already holds" in again.output  # a second run never writes over the first


def test_train_ano_needs_operator_parameters(trained, tmp_path):
    bare = tmp_path / "bare.h5"
    with h5py.File(trained["dataset"]) as f, h5py.File(bare, "w") as g:
        for key in ("features", "feature_names"):
            g[key] = f[key][()]
    result = CliRunner().invoke(cli, ["train-ano", "--tokens", str(trained["tokens"]), "--dataset", str(bare), "--output", str(tmp_path / "o")])
    assert result.exit_code == 2 and "operator_parameters" in result.output and "Traceback" not in result.output


class _Catcher:
    def __init__(self):
        self.events = []

    @hookimpl
    def visualize_checkpoint(self, event, checkpoint):
        self.events.append((event, checkpoint))


def test_training_hands_every_codebook_with_its_usage_to_plotters(trained, tmp_path):
    from spinlock_vqvae.config import VQVAEConfig
    from spinlock_vqvae.train import train

    catcher = _Catcher()
    pm = get_plugin_manager(load_entrypoints=False, plugins=[catcher])
    config = VQVAEConfig(input=str(trained["dataset"]), output_dir=str(tmp_path / "run"), epochs=4, batch_size=64, embedding_dim=8,
                         hidden_size=32, max_clusters=6, val_every_n_epochs=2)  # fmt: skip
    summary = train(config, pm=pm, progress=False)
    assert len(catcher.events) == 1  # once, at the end, for the last checkpoint
    event, checkpoint = catcher.events[0]
    assert checkpoint.path.endswith("last_model.pt") and event.epoch == 4
    books = event.codebooks
    assert len(books) == 3 * summary["category_count"] and {b.level for b in books} == {1, 2, 3}
    state = torch.load(tmp_path / "run" / "last_model.pt", weights_only=True)["model_state_dict"]
    assert np.array_equal(books[0].vectors, state["coders.0.levels.0.codebook"].numpy())
    for book in books:  # usage counted on the training split: shares summing to one; dead = never used
        assert book.usage.sum() == pytest.approx(1.0) and np.array_equal(book.dead, book.usage == 0)


def test_visualize_codebooks_says_what_to_install_without_a_plotter(trained, monkeypatch, tmp_path):
    import trainer_core

    monkeypatch.setattr(trainer_core, "get_plugin_manager", lambda **_: get_plugin_manager(load_entrypoints=False))
    result = CliRunner().invoke(cli, ["visualize-codebooks", str(trained["model"]), "--output", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and "pip install vizwatch" in result.output and not (tmp_path / "c.png").exists()
