"""The checkpoint engine: atomic commits, crash recovery, async saves, retention, loading.

Commit protocol (directory checkpoint ``<dir>/<name>/``):

1. write every file into a hidden temp sibling ``.tmp-<name>-<pid>-<rand>/``, fsync each;
2. write ``manifest.json`` last (sizes, sha256, step, metrics, ...), fsync it and the temp dir;
3. rename the temp dir to ``<name>``, fsync the parent. An existing ``<name>`` is swapped with
   the temp dir in one atomic ``renameat2(RENAME_EXCHANGE)`` and then deleted; where the file
   system cannot, it is first moved aside to ``.old-<name>-<pid>-<rand>``.

Single-file checkpoints (``<dir>/<name>.pt`` + ``<name>.pt.manifest.json``) write both to temp
siblings, then rename the data and then the manifest. A crash at any instant leaves either the
previous checkpoint or the new one complete; :func:`recover` (run when a manager starts, and by
:func:`load_checkpoint` / :func:`verify_checkpoint` when they meet a dead save's leftovers for the
path they read) removes leftovers, restores a moved-aside directory and finishes a manifest
rename that was cut off.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer_core import manifest as mf
from trainer_core.atomic import TMP_PREFIX, dumps_json, exchange, fsync_dir, sha256_file, temp_sibling, write_durable
from trainer_core.errors import CheckpointError, CorruptCheckpointError, UsageError
from trainer_core.layouts import CheckpointInfo
from trainer_core.retention import RetentionPolicy
from trainer_core.serialization import load_file, snapshot

OLD_PREFIX = ".old-"


# --- commit -------------------------------------------------------------------------------


def _check_file_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or name == mf.MANIFEST_NAME:
        raise UsageError(f"invalid checkpoint file name {name!r}: use a plain name like model.safetensors")


def _prepared(name: str, data: Any) -> Any:
    """Values not yet snapshotted (bytes or a writer) are serialised by suffix now."""
    return data if isinstance(data, bytes) or callable(data) else snapshot(name, data, copy=False)


def _write_files(directory: Path, payloads: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    entries = {}
    for name, data in payloads.items():
        _check_file_name(name)
        size, digest = write_durable(directory / name, _prepared(name, data))
        entries[name] = {"size": size, "sha256": digest}
    return entries


def commit_directory(target: Path, payloads: Mapping[str, Any], fields: dict[str, Any]) -> Path:
    """Atomically create (or replace) the directory checkpoint ``target``."""
    target = Path(target)
    tmp = temp_sibling(target)
    tmp.mkdir()
    try:
        files = _write_files(tmp, payloads)
        write_durable(tmp / mf.MANIFEST_NAME, dumps_json(mf.build_manifest(files=files, **fields)))
        fsync_dir(tmp)
        if target.exists():
            if exchange(tmp, target):  # one atomic step: no instant without a complete target
                fsync_dir(target.parent)
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                old = target.with_name(f"{OLD_PREFIX}{tmp.name[len(TMP_PREFIX) :]}")
                os.rename(target, old)
                os.rename(tmp, target)
                fsync_dir(target.parent)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def commit_file(target: Path, payload: Any, fields: dict[str, Any]) -> Path:
    """Atomically create (or replace) the single-file checkpoint ``target`` and its sidecar."""
    target = Path(target)
    _check_file_name(target.name)
    tmp_data = temp_sibling(target)
    tmp_manifest = temp_sibling(mf.sidecar_path(str(target)))
    try:
        size, digest = write_durable(tmp_data, _prepared(target.name, payload))
        manifest = mf.build_manifest(files={target.name: {"size": size, "sha256": digest}}, **fields)
        write_durable(tmp_manifest, dumps_json(manifest))
        os.replace(tmp_data, target)
        fsync_dir(target.parent)
        os.replace(tmp_manifest, mf.sidecar_path(str(target)))
        fsync_dir(target.parent)
    except BaseException:
        tmp_data.unlink(missing_ok=True)
        tmp_manifest.unlink(missing_ok=True)
        raise
    return target


# --- recovery -----------------------------------------------------------------------------


def _split_temp(name: str, prefix: str) -> tuple[str, int] | None:
    """``.tmp-<orig>-<pid>-<rand>`` -> (orig, pid)."""
    parts = name[len(prefix) :].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


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
        parsed = _split_temp(entry.name, prefix)
        if parsed is None or _alive(parsed[1]):
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


# --- describing what is on disk -----------------------------------------------------------


def describe_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Describe one engine checkpoint (directory or single file) from its manifest."""
    path = os.path.abspath(path)
    manifest_path, base = mf.manifest_location(path)
    return mf.describe(path, manifest_path, base)


def list_committed(directory: str | os.PathLike, layout: str | None = None) -> list[CheckpointInfo]:
    """Checkpoints directly inside ``directory`` (both kinds), sorted by recorded step."""
    directory = os.path.abspath(directory)
    found = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            manifest_path = os.path.join(entry.path, mf.MANIFEST_NAME)
            if not os.path.exists(manifest_path):
                continue
            info = mf.describe(entry.path, manifest_path, entry.path)
        elif entry.name.endswith(mf.SIDECAR_SUFFIX):
            data = entry.path[: -len(mf.SIDECAR_SUFFIX)]
            info = mf.describe(data, entry.path, directory)
        else:
            continue
        if layout is None or info.layout == layout:
            found.append(info)
    found.sort(key=lambda c: (c.step if c.step is not None else -1, c.created or ""))
    return found


def find_resume_point(path: str | os.PathLike, layout: str, checkpoints_subdir: str = "checkpoints") -> tuple[Path, Path]:
    """A checkpoint, or a run directory (meaning its newest checkpoint): (checkpoint, run dir).

    Runs keep their checkpoints in ``<run dir>/<checkpoints_subdir>/`` (``""``: in the run
    directory itself).
    """
    path = Path(path).absolute()
    is_checkpoint = (path / mf.MANIFEST_NAME).is_file() or Path(mf.sidecar_path(str(path))).is_file()
    folder = path / checkpoints_subdir if checkpoints_subdir else path
    if not is_checkpoint and folder.is_dir():
        found = [c for c in list_committed(folder, layout) if c.status == "ok"]
        if not found:
            raise UsageError(f"no committed checkpoint in {folder} to resume from; start a fresh run instead")
        return Path(found[-1].path), path
    if not path.exists():
        raise UsageError(f"cannot resume: {path} does not exist (give a checkpoint or a run directory)")
    if not is_checkpoint:
        raise UsageError(f"cannot resume from {path}: it is no committed checkpoint (no manifest); give a checkpoint or a run directory")
    return path, (path.parent.parent if checkpoints_subdir else path.parent)


# --- loading ------------------------------------------------------------------------------


@dataclass
class LoadedCheckpoint:
    info: CheckpointInfo
    files: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.files[name]


def settle(path: str | os.PathLike) -> None:
    """Finish or undo a save of ``path`` that a dead process left half-way (see :func:`recover`)."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return
    if any(n.startswith((f"{TMP_PREFIX}{name}", f"{OLD_PREFIX}{name}")) for n in names):
        recover(parent)


def verify_checkpoint(path: str | os.PathLike, *, hashes: bool = True) -> CheckpointInfo:
    """Describe and (with ``hashes``) re-hash every file; problems land in ``info.problems``."""
    settle(path)
    info = describe_checkpoint(path)
    if info.status != "ok" or not hashes:
        return info
    base = info.path if os.path.isdir(info.path) else os.path.dirname(info.path)
    for name, entry in info.files.items():
        if sha256_file(os.path.join(base, name)) != entry.get("sha256"):
            info.status = "corrupt"
            info.problems.append(f"{name}: sha256 differs from the manifest (file changed or damaged)")
    return info


def load_checkpoint(
    path: str | os.PathLike,
    *,
    files: list[str] | None = None,
    verify: bool = True,
    trust_pickle: bool = False,
    framework: str = "pt",
) -> LoadedCheckpoint:
    """Load a committed checkpoint's files safely (never unpickling code).

    ``verify`` re-hashes every file against the manifest first; a mismatch raises
    :class:`CorruptCheckpointError` naming the file.
    """
    path = os.fspath(path)
    settle(path)
    if not os.path.exists(path):
        raise UsageError(f"no checkpoint at {path}: check the path (`core list-checkpoints` shows what exists)")
    info = verify_checkpoint(path, hashes=verify)
    if info.status != "ok":
        raise CorruptCheckpointError(f"{path} is {info.status}: {'; '.join(info.problems)}")
    base = info.path if os.path.isdir(info.path) else os.path.dirname(info.path)
    wanted = files if files is not None else list(info.files)
    loaded = {}
    for name in wanted:
        if name not in info.files:
            raise CheckpointError(f"{path} has no file {name!r}; it has {sorted(info.files)}")
        loaded[name] = load_file(os.path.join(base, name), trust_pickle=trust_pickle, framework=framework)
    return LoadedCheckpoint(info, loaded)


# --- asynchronous writing -----------------------------------------------------------------

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
            print(f"error: a background checkpoint save failed: {exc}", file=__import__("sys").stderr)


# --- the manager --------------------------------------------------------------------------


class CheckpointManager:
    """Saves a run's checkpoints into ``directory`` through the commit protocol above.

    ``state`` given to :meth:`save` maps file names to values; the suffix picks the format (see
    :mod:`trainer_core.serialization`). With ``single_file=True`` each checkpoint is one file named
    by ``name_format`` (which must then carry the suffix) and ``state`` holds exactly one entry.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        package: str,
        layout: str,
        layout_version: int = 1,
        kind: str = "checkpoint",
        name_format: str = "checkpoint_step_{step:08d}",
        single_file: bool = False,
        retention: RetentionPolicy | None = None,
        async_save: bool = False,
        hooks: Any = None,
        run: Any = None,
    ) -> None:
        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.package, self.layout, self.layout_version, self.kind = package, layout, layout_version, kind
        self.name_format = name_format
        self.single_file = single_file
        self.retention = retention
        self.hooks = hooks
        self.run = run
        self.recovered = recover(self.directory)
        self._writer = AsyncWriter() if async_save else None
        self._staging: dict = {}  # host buffers reused by successive async snapshots

    # paths never deleted by retention (e.g. the checkpoint a run resumed from)
    def protect(self, path: str | os.PathLike) -> None:
        if self.retention is not None:
            self.retention.protected.add(os.path.abspath(path))

    def save(
        self,
        state: Mapping[str, Any],
        *,
        step: int,
        epoch: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        config_hash: str | None = None,
        name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Future | CheckpointInfo:
        """Snapshot ``state`` now and commit it (in the background when ``async_save``).

        Returns the committed :class:`CheckpointInfo`, or a Future of it when asynchronous.
        """
        name = name or self.name_format.format(step=step, epoch=epoch if epoch is not None else 0)
        metrics = {k: (v.item() if hasattr(v, "item") else v) for k, v in (metrics or {}).items()}
        extra = dict(extra or {})
        if self.hooks is not None:
            for more in self.hooks.before_save(run=self.run, name=name, step=step, epoch=epoch, metrics=metrics):
                if more:
                    extra.update(more)
        if self.single_file and len(state) != 1:
            raise UsageError("a single-file checkpoint holds exactly one file")
        if self._writer is not None:
            self._writer.wait()  # at most one save in flight; surfaces an earlier failure
        # asynchronous: copy to host memory now (training goes on); synchronous: serialise in place
        payloads = {
            file_name: snapshot(file_name, value, copy=self._writer is not None, staging=self._staging)
            for file_name, value in state.items()
        }
        fields = dict(
            package=self.package,
            layout=self.layout,
            layout_version=self.layout_version,
            kind=self.kind,
            name=name,
            step=int(step),
            epoch=epoch,
            metrics=metrics,
            config_hash=config_hash,
            extra=extra,
        )

        def job() -> CheckpointInfo:
            target = self.directory / name
            if self.single_file:
                commit_file(target, next(iter(payloads.values())), fields)
            else:
                commit_directory(target, payloads, fields)
            info = describe_checkpoint(target)
            self.apply_retention()
            if self.hooks is not None:
                self.hooks.after_save(run=self.run, checkpoint=info)
            return info

        if self._writer is not None:
            return self._writer.submit(job)
        return job()

    def wait(self) -> None:
        """Block until the save in flight (if any) is committed; re-raise its error."""
        if self._writer is not None:
            self._writer.wait()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def checkpoints(self) -> list[CheckpointInfo]:
        """This manager's committed checkpoints, oldest step first."""
        return [c for c in list_committed(self.directory, self.layout) if c.status == "ok"]

    def latest(self) -> CheckpointInfo | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def apply_retention(self) -> list[CheckpointInfo]:
        if self.retention is None:
            return []
        doomed = self.retention.select_for_deletion(self.checkpoints())
        for info in doomed:
            delete_checkpoint(info)
        return doomed


def delete_checkpoint(info: CheckpointInfo) -> None:
    """Delete one engine checkpoint so that a crash midway never leaves a complete-looking one.

    A directory is renamed to a temp name first (it leaves listings at once; :func:`recover`
    finishes the job). A single file loses its manifest first (moved to a temp name), then data.
    """
    if not info.manifest_path:
        raise CheckpointError(f"{info.path} has no manifest; refusing to delete what core did not write")
    path = Path(info.path)
    doomed = temp_sibling(path)
    if path.is_dir():
        os.rename(path, doomed)
        fsync_dir(path.parent)
        shutil.rmtree(doomed, ignore_errors=True)
    else:
        doomed_manifest = temp_sibling(info.manifest_path)
        os.rename(info.manifest_path, doomed_manifest)
        os.rename(path, doomed)
        fsync_dir(path.parent)
        doomed.unlink()
        doomed_manifest.unlink()
    fsync_dir(path.parent)
