"""run_lifecycle: the hooks around every trainer's loop, and what they see when it fails."""

from __future__ import annotations

import pytest

from trainer_core.hookspecs import hookimpl
from trainer_core.plugins import get_plugin_manager
from trainer_core.session import run_lifecycle


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


class Closer:
    def __init__(self, calls, name):
        self.calls, self.name = calls, name

    def close(self):
        self.calls.append(f"close:{self.name}")


def _pm():
    recorder = Recorder()
    return get_plugin_manager(load_entrypoints=False, plugins=[recorder]), recorder.calls


def test_a_completed_run_closes_then_ends():
    pm, calls = _pm()
    with run_lifecycle(pm, object(), Closer(calls, "manager"), Closer(calls, "logger")) as status:
        calls.append("train")
    assert calls == ["start", "train", "close:manager", "close:logger", "end:completed"]
    assert status.value == "completed"


def test_the_trainer_sets_its_own_ending():
    pm, calls = _pm()
    with run_lifecycle(pm, object()) as status:
        status.value = "early_stopped"
    assert calls[-1] == "end:early_stopped"


@pytest.mark.parametrize("error, ending", [(ValueError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_an_exception_is_reported_closed_and_re_raised(error, ending):
    pm, calls = _pm()
    with pytest.raises(type(error)), run_lifecycle(pm, object(), Closer(calls, "manager")):
        raise error
    assert calls == ["start", f"error:{type(error).__name__}", "close:manager", f"end:{ending}"]


def test_end_is_called_even_when_closing_fails():
    pm, calls = _pm()

    class Broken:
        def close(self):
            raise OSError("disk full")

    with pytest.raises(OSError), run_lifecycle(pm, object(), Broken()):
        pass
    assert calls == ["start", "end:completed"]
