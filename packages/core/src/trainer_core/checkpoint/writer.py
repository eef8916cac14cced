"""The background writer of asynchronous saves: one thread, one save in flight, errors re-raised."""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_LIVE_WRITERS: "weakref.WeakSet[AsyncWriter]" = weakref.WeakSet()


class AsyncWriter:
    """One background thread; at most one save in flight; errors re-raised on the next call."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending: Future | None = None
        self._lock = threading.Lock()
        _LIVE_WRITERS.add(self)

    def submit(self, job: Callable[[], Any]) -> Future:
        self.wait()
        with self._lock:
            self._pending = self._pool.submit(job)
            return self._pending

    def wait(self) -> Any:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            return pending.result()  # re-raises the writer's exception here
        return None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


@atexit.register
def _drain_writers() -> None:
    for writer in list(_LIVE_WRITERS):
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001 - report, the process is exiting anyway
            print(f"error: a background checkpoint save failed: {exc}", file=sys.stderr)
