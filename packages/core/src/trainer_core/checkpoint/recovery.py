"""Cleaning up after a crash: unfinished saves removed, moved-aside checkpoints restored, a cut-off
manifest rename finished. Entries of a live process (a save in progress) are left alone.

Whose entry is it? A temp name carries its writer's pid and host. On this host the pid says whether
the writer lives; an entry of another host (a node sharing the file system) is judged by its age
only: it is left alone until it is older than ``TRAINER_CORE_FOREIGN_TEMP_AGE`` seconds (default 6
hours), so one node never deletes another node's save in progress."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from trainer_core.checkpoint import manifest as mf
from trainer_core.checkpoint.atomic import TMP_PREFIX, fsync_dir, host_tag, sha256_file
from trainer_core.checkpoint.commit import OLD_PREFIX

FOREIGN_TEMP_AGE_S = 6 * 3600.0


def _split_temp(name: str, prefix: str) -> tuple[str, int] | None:
    """``.tmp-<orig>-<pid>-<rand>[@<host>]`` -> (orig, pid)."""
    parsed = _parse_temp(name, prefix)
    return None if parsed is None else parsed[:2]


def _parse_temp(name: str, prefix: str) -> tuple[str, int, str | None] | None:
    """``.tmp-<orig>-<pid>-<rand>@<host>`` -> (orig, pid, host); host None in the older form."""
    body, at, host = name[len(prefix) :].rpartition("@")
    if not at or not host or "-" not in body:
        body, host = name[len(prefix) :], None
    parts = body.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), host


def _in_progress(entry: os.DirEntry, pid: int, host: str | None) -> bool:
    """True while the entry's writer may still be at work (see the module's docstring)."""
    if host is None or host == host_tag():
        return _alive(pid)
    limit = float(os.environ.get("TRAINER_CORE_FOREIGN_TEMP_AGE", FOREIGN_TEMP_AGE_S))
    try:
        age = time.time() - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return True
    return age < limit


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(directory: str | os.PathLike) -> list[str]:
    """Clean up after a crash in ``directory``; returns what was done, one line per action.

    Entries belonging to a live process (another run saving right now) are left alone.
    """
    from trainer_core import storage

    if storage.is_url(directory):
        from trainer_core.checkpoint import remote

        return [f"removed unreferenced data {url}" for url in remote.collect_garbage(str(directory))]
    directory = Path(directory)
    actions: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return actions
    for entry in entries:
        for prefix in (OLD_PREFIX, TMP_PREFIX):
            if entry.name.startswith(prefix):
                break
        else:
            continue
        parsed = _parse_temp(entry.name, prefix)
        if parsed is None or _in_progress(entry, parsed[1], parsed[2]):
            continue
        original = directory / parsed[0]
        path = Path(entry.path)
        if prefix == OLD_PREFIX:
            if original.exists():
                shutil.rmtree(path, ignore_errors=True)
                actions.append(f"removed superseded {entry.name}")
            else:
                os.rename(path, original)
                actions.append(f"restored {parsed[0]} from {entry.name}")
            continue
        if parsed[0].endswith(mf.SIDECAR_SUFFIX) and _promote_sidecar(path, directory / parsed[0]):
            actions.append(f"completed manifest {parsed[0]}")
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        actions.append(f"removed unfinished {entry.name}")
    if actions:
        fsync_dir(directory)
    return actions


def _promote_sidecar(tmp_manifest: Path, sidecar: Path) -> bool:
    """A crash between the data rename and the manifest rename: finish it if the data matches."""
    try:
        manifest, _ = mf.read_manifest(str(tmp_manifest))
        ((name, entry),) = manifest["files"].items()
        data = sidecar.parent / name
        if data.stat().st_size != entry["size"] or sha256_file(data) != entry["sha256"]:
            return False
    except (OSError, ValueError, KeyError):
        return False
    os.replace(tmp_manifest, sidecar)
    return True


def settle(path: str | os.PathLike) -> None:
    """Finish or undo a save of ``path`` that a dead process left half-way (see :func:`recover`)."""
    from trainer_core import storage

    if storage.is_url(path):
        return  # a remote save never half-publishes: nothing to finish
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return
    if any(n.startswith((f"{TMP_PREFIX}{name}", f"{OLD_PREFIX}{name}")) for n in names):
        recover(parent)
