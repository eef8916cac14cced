"""What a user of the original projects types still works: the seeds' underscore flags, the
detector script's --status / --reset forms, and arc's --info-only (shared/seeds lists them)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

SEED_FLAGS = [
    ("vizwatch.cli", ["train", "--focal_gamma", "1"]),
    ("vizwatch.cli", ["train", "--oversample_target", "0.5"]),
    ("vizwatch.cli", ["train", "--visualize_training"]),
    ("vizwatch.cli", ["train", "--viz_every", "5"]),
    ("vizwatch.cli", ["train", "--viz_method", "pca"]),
    ("vizwatch.cli", ["train", "--batch_size=64"]),
    ("bongard_detector.cli", ["train", "--batch_size", "8"]),
    ("bongard_detector.cli", ["train", "--dataset_size", "10"]),
    ("bongard_detector.cli", ["--professional", "--batch_size", "8"]),  # the seed's script had no subcommand
    ("spinlock_vqvae.cli", ["train-vqvae", "--batch_size", "8"]),
    ("core", ["example-train", "--batch_size", "8"]),
]


def _cli(module: str):
    if module == "core":
        from trainer_core.cli import build_cli

        return build_cli()
    return __import__(module, fromlist=["cli"]).cli


@pytest.mark.parametrize("module, args", SEED_FLAGS)
def test_the_seeds_underscore_flags_are_accepted(module, args):
    """Each seed flag is parsed (the run then stops at a deliberately bad --epochs, before any work)."""
    result = CliRunner().invoke(_cli(module), [*args, "--epochs", "not-a-number"])
    assert result.exit_code == 2, result.output
    assert "No such option" not in result.output and "--epochs" in result.output, result.output


def test_help_shows_one_spelling():
    result = CliRunner().invoke(_cli("vizwatch.cli"), ["train", "--help"])
    assert "--focal-gamma" in result.output and "--focal_gamma" not in result.output


def test_c2v_training_dir_and_detector_status_reset_forms(tmp_path):
    analyze = CliRunner().invoke(_cli("choice2vec.cli"), ["analyze", "--training_dir", str(tmp_path / "nope")])
    assert analyze.exit_code == 2 and "No such option" not in analyze.output
    detector = _cli("bongard_detector.cli")
    status = CliRunner().invoke(detector, ["--status", "--root", str(tmp_path)])
    assert status.exit_code == 0 and "Checkpoint Status" in status.output
    reset = CliRunner().invoke(detector, ["--reset", "data", "--root", str(tmp_path)])
    assert reset.exit_code == 0 and "reset" in reset.output and "No such option" not in reset.output
