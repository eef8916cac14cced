"""Stage checkpointing: each stage is redone when its settings or outputs change, and only then."""

from __future__ import annotations

import json
import shutil

import pytest

from bongard_detector.pipeline import Pipeline, make_config

TINY = dict(dataset_size=24, test_size=8, real_size=8, val_size=8, image_size=128, epochs=1, classifier_steps=2, workers=0)


def pipeline(root, **changes):
    return Pipeline(make_config("quick", **{**TINY, **changes}), root, echo=lambda line: None, progress=False)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector")
    results = pipeline(root).run()
    assert results["work_done"] == {"data_generation": True, "training": True, "evaluation": True}
    return root


def _stamps(root):
    return {p.name: json.loads(p.read_text())["timestamp"] for p in (root / "checkpoints").glob("*.json")}


def test_results_and_stage_files(done):
    results = json.loads((done / "results/system1_training_results.json").read_text())
    assert {"synthetic", "real"} <= set(results["evaluation"]) and results["targets"][0]["metric"] == "AP50"
    for stage in ("data_generation", "training", "evaluation"):
        record = json.loads((done / "checkpoints" / f"{stage}.json").read_text())
        assert record["status"] == "completed" and record["config_hash"] and record["timestamp"] and record["outputs"]
    data = json.loads((done / "checkpoints/data_generation.json").read_text())
    counts = [o for o in data["outputs"] if o["type"] == "json_count"]
    assert len(counts) == 4 and all(o["count"] > 0 for o in counts)  # train, val, test, real annotation counts
    assert [o for o in data["outputs"] if o["path"].endswith("_shapes.tsv")]  # the shape split is recorded


def test_nothing_changed_means_no_work(done):
    before = _stamps(done)
    again = pipeline(done).run()
    assert again["work_done"] == {"data_generation": False, "training": False, "evaluation": False}
    assert _stamps(done) == before


def test_an_evaluation_setting_reruns_only_evaluation(done):
    results = pipeline(done, score_threshold=0.2).run()
    assert results["work_done"] == {"data_generation": False, "training": False, "evaluation": True}


def test_a_deleted_model_checkpoint_triggers_retraining(done):
    shutil.rmtree(done / "models/quick/final")
    results = pipeline(done).run()
    assert results["work_done"] == {"data_generation": False, "training": True, "evaluation": True}
    assert (done / "models/quick/final").is_dir()


def test_detection_starts_from_the_shape_classifier_and_keeps_its_frozen_stages(done):
    import torch

    from bongard_detector.training import load_classifier, load_trained
    from trainer_core.checkpoint import load_checkpoint

    results = json.loads((done / "results/system1_training_results.json").read_text())
    assert results["training"]["classifier"]["steps"] == TINY["classifier_steps"]
    (trained,) = (done / "models/quick/classifier").glob("step_*")
    classifier = load_checkpoint(trained).files["model.safetensors"]
    body = load_trained(done / "models/quick/final")[0].backbone.body.state_dict()
    for name in ("conv1.weight", "layer1.0.conv1.weight", "layer1.1.bn2.weight"):  # frozen: as the classifier's
        assert torch.equal(body[name], classifier[name])
    assert not torch.equal(body["layer2.0.conv1.weight"], classifier["layer2.0.conv1.weight"])  # trained on
    saved = load_classifier(done / "models/quick/final").state_dict()  # shipped with the model for rescoring
    assert all(torch.equal(saved[k], classifier[k]) for k in classifier)


def test_rescoring_is_an_evaluation_setting_reported_beside_the_detector_alone(done):
    results = pipeline(done).run()
    synthetic = results["evaluation"]["synthetic"]
    assert set(synthetic["detector_only"]) == {"AP", "AP50", "AP75"}
    plain = pipeline(done, rescore=False).run()
    assert plain["work_done"] == {"data_generation": False, "training": False, "evaluation": True}
    assert "detector_only" not in plain["evaluation"]["synthetic"]
    assert plain["evaluation"]["synthetic"]["AP"] == synthetic["detector_only"]["AP"]


def test_a_corrupt_stage_file_is_reported_reset_and_redone(done):
    (done / "checkpoints/evaluation.json").write_text("{ not json")
    lines = []
    results = Pipeline(make_config("quick", **TINY), done, echo=lines.append, progress=False).run()
    assert results["work_done"]["evaluation"] and not results["work_done"]["training"]
    assert any("evaluation.json is unreadable" in line for line in lines)
    assert json.loads((done / "checkpoints/evaluation.json").read_text())["status"] == "completed"


def test_status_reset_and_evaluate_commands(done, tmp_path):
    from click.testing import CliRunner

    from bongard_detector.cli import cli

    runner = CliRunner()
    done = shutil.copytree(done, tmp_path / "copy")  # stage outputs are recorded relative to the root
    status = runner.invoke(cli, ["status", "--root", str(done)])
    assert status.exit_code == 0 and "🔍 Checkpoint Status:" in status.output and status.output.count("✅") == 3
    reset = runner.invoke(cli, ["reset", "eval", "--root", str(done)])
    assert reset.exit_code == 0 and "evaluation" in reset.output
    status = runner.invoke(cli, ["status", "--root", str(done)])
    assert "Evaluation: ❌ never run" in status.output
    untrained = runner.invoke(cli, ["evaluate", "--root", str(tmp_path / "empty"), "--profile", "quick"])
    assert untrained.exit_code == 2 and "run `detector train`" in untrained.output and "Traceback" not in untrained.output


def test_the_averaged_epochs_are_a_training_setting_checked_against_the_epochs(tmp_path):
    from click.testing import CliRunner

    from bongard_detector.cli import cli

    default, none = (Pipeline(make_config("quick", swa_epochs=s), tmp_path / "p", echo=lambda line: None) for s in (None, 0))
    assert default.config.train.swa_epochs == 1 and none.config.train.swa_epochs == 0
    assert default.training_hash() != none.training_hash() and default.data_hash() == none.data_hash()
    root = tmp_path / "root"
    result = CliRunner().invoke(cli, ["validate", "--profile", "quick", "--epochs", "2", "--swa-epochs", "3", "--root", str(root)])
    assert result.exit_code == 2 and "--swa-epochs 3" in result.output and "Traceback" not in result.output
    assert not root.exists()  # refused before anything is written
