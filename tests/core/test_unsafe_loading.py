"""A checkpoint whose weight file is a malicious pickle is never executed by list/show/verify/load."""

from __future__ import annotations

import os
import pickle

import pytest

from trainer_core.checkpoint import commit_directory, commit_file, load_checkpoint
from trainer_core.checkpoint.serialization import load_file
from trainer_core.errors import UnsafeCheckpointError

torch = pytest.importorskip("torch")


class Evil:
    """Unpickling this creates a marker directory: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


FIELDS = dict(
    package="trainer-core",
    layout="core.example",
    layout_version=1,
    kind="training",
    name="evil",
    step=1,
    epoch=1,
    metrics={},
    config_hash=None,
    extra={},
)


def _evil_torch_bytes(tmp_path, marker):
    path = tmp_path / "evil-src.pt"
    torch.save({"weight": torch.ones(2), "payload": Evil(str(marker))}, path)
    return path.read_bytes()


@pytest.fixture
def evil_checkpoints(tmp_path):
    marker = tmp_path / "PWNED"
    runs = tmp_path / "runs"
    runs.mkdir()
    # a manifest that matches the files exactly: integrity checks pass, only safe loading saves us
    from trainer_core.checkpoint.serialization import bytes_of
    from trainer_core.example.config import ExampleConfig

    valid = {"model.safetensors": bytes_of("model.safetensors", {"w": torch.ones(2)}), "config.json": ExampleConfig().model_dump()}
    commit_directory(runs / "zip_pickle", {"trainer_state.pt": _evil_torch_bytes(tmp_path, marker), **valid}, FIELDS)
    commit_directory(runs / "raw_pickle", {"model.pt": pickle.dumps(Evil(str(marker)))}, FIELDS)
    commit_file(runs / "legacy.pth", pickle.dumps({"w": Evil(str(marker))}), FIELDS)
    return runs, marker


def test_list_show_verify_never_execute_it(evil_checkpoints, run_core):
    runs, marker = evil_checkpoints
    assert run_core("list-checkpoints", runs).exit_code == 0
    for name in ("zip_pickle", "raw_pickle", "legacy.pth"):
        assert run_core("show", runs / name).exit_code == 0
    assert run_core("verify", runs).exit_code == 0  # the bytes are exactly what the manifest says
    assert not marker.exists()


@pytest.mark.parametrize("name", ["zip_pickle", "raw_pickle", "legacy.pth"])
def test_load_refuses_it_with_a_clear_error(evil_checkpoints, name):
    runs, marker = evil_checkpoints
    with pytest.raises(UnsafeCheckpointError, match="trust-pickle"):
        load_checkpoint(runs / name)
    assert not marker.exists()


def test_resuming_from_it_exits_cleanly_without_running_it(evil_checkpoints, run_core):
    runs, marker = evil_checkpoints
    result = run_core("example-train", "--resume", runs / "zip_pickle", "--no-progress")
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert not marker.exists()


def test_legacy_pickle_only_with_explicit_trust(tmp_path):
    path = tmp_path / "model_weights.pkl"
    path.write_bytes(pickle.dumps({"params": [1, 2, 3]}))
    with pytest.raises(UnsafeCheckpointError, match="--trust-pickle"):
        load_file(path)
    assert load_file(path, trust_pickle=True) == {"params": [1, 2, 3]}
