"""Shared by the arc-serve tests: polling /status until a condition holds."""

from __future__ import annotations

import time

import pytest


def _wait_for_status(client, predicate, timeout: float = 120):
    """The first /status for which ``predicate`` is true; AssertionError with the last one after ``timeout`` s."""
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status = client.get("/status").get_json()
        if predicate(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"timed out; last status {status}")


@pytest.fixture
def wait_for_status():
    """``wait_for_status(client, predicate, timeout=120)``: the first /status that satisfies ``predicate``."""
    return _wait_for_status
