"""One writer per run directory: an advisory lock held by the process that trains in it.

The lock is ``fcntl.flock`` on ``<run dir>/.run.lock``. The kernel drops it when the process
exits, however it exits (a SIGKILL included), so a crashed run never leaves a stale lock behind
and nothing has to judge a pid. The file keeps the holder's host and pid for the message a
second writer gets. On Linux NFS (v4, and v3 with lockd) ``flock`` is carried by the server as a
POSIX lock, so it holds across machines there too; on a file system without locking at all the
acquisition fails with ENOLCK and the run says so instead of training unguarded.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

from trainer_core.errors import UsageError

LOCK_NAME = ".run.lock"


class RunDirLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process's end)."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir, self._fd = run_dir, fd

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike) -> RunDirLock:
        run_dir = Path(run_dir)
        path = run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(
                    f"{run_dir} is in use by a training run ({holder}); wait for it to end, or give another output directory"
                ) from None
            raise UsageError(f"cannot lock {path}: {os.strerror(exc.errno or 0)}; use a directory on a file system with locking") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        return cls(run_dir, fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1
