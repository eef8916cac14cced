"""TrainingRun's lifecycle: the hooks around every trainer's loop, and what they see when it fails."""

from __future__ import annotations

import pytest

from trainer_core import CheckpointLayout, TrainingRun
from trainer_core.hookspecs import hookimpl
from trainer_core.plugins import get_plugin_manager

LAYOUT = CheckpointLayout(name="lifecycle.test", package="lifecycle")


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def on_train_start(self, run):
        self.calls.append("start")

    @hookimpl
    def on_train_error(self, run, error):
        self.calls.append(f"error:{type(error).__name__}")

    @hookimpl
    def on_train_end(self, run, status):
        self.calls.append(f"end:{status}")


def _run(tmp_path):
    recorder = Recorder()
    pm = get_plugin_manager(load_entrypoints=False, plugins=[recorder], warn=False)
    return TrainingRun({"seed": 1}, layout=LAYOUT, run_dir=tmp_path, pm=pm), recorder.calls


def test_a_completed_run_closes_then_ends(tmp_path):
    run, calls = _run(tmp_path)
    with run:
        calls.append("train")
        run.log({"loss": 1.0}, step=1)
    assert calls == ["start", "train", "end:completed"]
    assert run.status == "completed" and (tmp_path / "history.json").is_file()


def test_the_trainer_sets_its_own_ending(tmp_path):
    run, calls = _run(tmp_path)
    with run:
        run.status = "early_stopped"
    assert calls[-1] == "end:early_stopped"


@pytest.mark.parametrize("error, ending", [(ValueError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_an_exception_is_reported_closed_and_re_raised(tmp_path, error, ending):
    run, calls = _run(tmp_path)
    with pytest.raises(type(error)), run:
        raise error
    assert calls == ["start", f"error:{type(error).__name__}", f"end:{ending}"]


def test_end_is_called_even_when_closing_fails(tmp_path):
    run, calls = _run(tmp_path)

    def broken():
        raise OSError("disk full")

    run.manager.close = broken
    with pytest.raises(OSError), run:
        pass
    assert calls == ["start", "end:completed"]


def test_a_long_lived_session_starts_and_finishes_once(tmp_path):
    run, calls = _run(tmp_path)
    run.start()
    run.start()
    run.finish()
    run.finish()
    assert calls == ["start", "end:completed"]
