"""Trials files: round trips, and one clear line (exit 2) for each problem."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from choice2vec.cli import cli
from choice2vec.data import DataError, load_trials, save_trials
from choice2vec.task import TaskConfig, simulate


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_generated_files_round_trip_with_states_and_parameters(tmp_path, suffix):
    trials = simulate(TaskConfig(participants=3, trials_per_participant=40))
    back = load_trials(save_trials(trials, tmp_path / f"t{suffix}"))
    np.testing.assert_allclose(back.rt, trials.rt, rtol=1e-5)
    np.testing.assert_array_equal(back.state, trials.state)
    np.testing.assert_allclose(back.params.gain, trials.params.gain)
    assert back.task == trials.task


def _csv(tmp_path, rows, header="participant,trial,stimulus,difficulty,choice,correct,rt,reward"):
    path = tmp_path / "mine.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


GOOD = [f"{p},{t},1,0.2,1,1,0.6,1" for p in range(2) for t in range(20)]


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (
            lambda rows: [r.replace(",0.6,", ",-0.3,") if i < 3 else r for i, r in enumerate(rows)],
            "column rt has 3 negative or zero value(s)",
        ),
        (lambda rows: [r.replace(",0.2,", ",nan,") if i < 2 else r for i, r in enumerate(rows)], "column difficulty has 2 NaN"),
        (
            lambda rows: [r.replace(",1,0.6", ",2,0.6") if i == 0 else r for i, r in enumerate(rows)],
            "column correct must be 0 or 1; 1 row(s)",
        ),
    ],
)
def test_bad_values_are_named_with_their_count(tmp_path, mutate, needle):
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_trials(_csv(tmp_path, mutate(GOOD)))


def test_missing_and_unknown_columns(tmp_path):
    with pytest.raises(DataError, match="missing column"):
        load_trials(_csv(tmp_path, [r.rsplit(",", 1)[0] for r in GOOD], header="participant,trial,stimulus,difficulty,choice,correct,rt"))
    with pytest.raises(DataError, match="unknown column.*rtt"):
        load_trials(_csv(tmp_path, GOOD, header="participant,trial,stimulus,difficulty,choice,correct,rtt,reward"))


def test_train_on_a_bad_file_exits_2_with_one_line(tmp_path):
    path = _csv(tmp_path, [r.replace(",0.6,", ",-1,") for r in GOOD])
    result = CliRunner().invoke(cli, ["train", "--data", str(path), "--output-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "column rt has 40 negative" in result.output and "Traceback" not in result.output
    assert not list((tmp_path / "run").glob("checkpoint_*")) if (tmp_path / "run").exists() else True


def test_unknown_config_key_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--set", "model.layerz=3", "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "layerz" in result.output


def test_generate_data_never_overwrites(tmp_path):
    out = tmp_path / "d.csv"
    assert CliRunner().invoke(cli, ["generate-data", "--output", str(out), "--participants", "2", "--trials", "20"]).exit_code == 0
    before = out.read_bytes()
    again = CliRunner().invoke(cli, ["generate-data", "--output", str(out), "--participants", "3", "--trials", "20"])
    assert again.exit_code == 2 and "already exists" in again.output and out.read_bytes() == before


def test_a_header_only_or_binary_csv_is_one_line(tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("participant,trial,stimulus,choice,correct,rt,difficulty,reward\n")
    with pytest.raises(DataError, match="has a header but no trials"):
        load_trials(header)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(DataError, match="not a UTF-8 CSV"):
        load_trials(binary)
