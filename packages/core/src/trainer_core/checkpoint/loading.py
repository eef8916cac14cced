"""Describing, finding, verifying and loading committed checkpoints (never unpickling code)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer_core import storage
from trainer_core.checkpoint import manifest as mf
from trainer_core.checkpoint import remote
from trainer_core.checkpoint.atomic import sha256_file
from trainer_core.checkpoint.recovery import settle
from trainer_core.checkpoint.serialization import load_file
from trainer_core.errors import CheckpointError, CorruptCheckpointError, UsageError
from trainer_core.layouts import CheckpointInfo


def describe_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Describe one engine checkpoint (directory or single file) from its manifest."""
    if storage.is_url(path):
        return remote.describe(str(path)) or CheckpointInfo(path=str(path), status="incomplete", problems=["no manifest"])
    path = os.path.abspath(path)
    manifest_path, base = mf.manifest_location(path)
    return mf.describe(path, manifest_path, base)


def list_committed(directory: str | os.PathLike, layout: str | None = None) -> list[CheckpointInfo]:
    """Checkpoints directly inside ``directory`` (both kinds), sorted by recorded step."""
    if storage.is_url(directory):
        return remote.list_direct(str(directory), layout)
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
    directory itself). A URL (object storage) gives URLs back.
    """
    if storage.is_url(path):
        return _find_remote_resume_point(str(path), layout, checkpoints_subdir)
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


def _find_remote_resume_point(url: str, layout: str, checkpoints_subdir: str) -> tuple[str, str]:
    url = url.rstrip("/")
    if remote.describe(url) is not None:
        run_dir = storage.parent(url)
        return url, (storage.parent(run_dir) if checkpoints_subdir else run_dir)
    folder = storage.join(url, checkpoints_subdir)
    found = [c for c in remote.list_direct(folder, layout) if c.status == "ok"]
    if not found:
        raise UsageError(f"no committed checkpoint at {url} or in {folder} to resume from; give a checkpoint or a run URL")
    return found[-1].path, url


def resume_config_path(path: str | os.PathLike, layout: str, checkpoints_subdir: str = "checkpoints") -> Path | None:
    """The config a run to resume was trained with: the checkpoint's ``config.json``, else the run's
    ``config.yaml``. The checkpoint's hashes are checked first, so a damaged config is reported as
    a corrupt checkpoint instead of being parsed."""
    checkpoint, run_dir = find_resume_point(path, layout, checkpoints_subdir)
    info = verify_checkpoint(checkpoint)
    if info.status != "ok":
        raise CorruptCheckpointError(f"cannot resume from {checkpoint}: it is {info.status} ({'; '.join(info.problems)}); resume from an older checkpoint")
    if storage.is_url(checkpoint):
        return _remote_config(str(checkpoint), str(run_dir), info)
    for candidate in (checkpoint / "config.json", run_dir / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


def _remote_config(checkpoint: str, run_dir: str, info: CheckpointInfo) -> Path | None:
    """A remote run's config, downloaded to a temporary file (read at once by the caller)."""
    import tempfile

    if "config.json" in info.files:
        _, files = remote.load(checkpoint, ["config.json"], verify_hashes=True, trust_pickle=False, framework="pt")
        text, suffix = mf.dumps_json_text(files["config.json"]), ".json"
    else:
        fs, inner = storage.filesystem(storage.join(run_dir, "config.yaml"))
        try:
            text, suffix = fs.cat_file(inner).decode(), ".yaml"
        except FileNotFoundError:
            return None
    handle = tempfile.NamedTemporaryFile("w", suffix=suffix, prefix="trainer-core-config-", delete=False)
    with handle:
        handle.write(text)
    return Path(handle.name)


@dataclass
class LoadedCheckpoint:
    info: CheckpointInfo
    files: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.files[name]


def verify_checkpoint(path: str | os.PathLike, *, hashes: bool = True) -> CheckpointInfo:
    """Describe and (with ``hashes``) re-hash every file; problems land in ``info.problems``."""
    if storage.is_url(path):
        return remote.verify(str(path), hashes=hashes)
    settle(path)
    info = describe_checkpoint(path)
    if info.status != "ok" or not hashes:
        return info
    return verify_hashes(info)


def verify_hashes(info: CheckpointInfo, recorded_in: str = "the manifest") -> CheckpointInfo:
    """Re-hash every file of ``info.files`` (named relative to the checkpoint) against the sha256
    ``recorded_in`` says; a file whose hash differs, or that records none, marks ``info`` corrupt.
    For a layout that describes its own folders (no engine manifest) and records its files'
    hashes in its own metadata, this is what ``core verify`` checks."""
    base = info.path if os.path.isdir(info.path) else os.path.dirname(info.path)
    for name, entry in info.files.items():
        expected = entry.get("sha256")
        if expected is None:
            info.status = "corrupt"
            info.problems.append(f"{name}: {recorded_in} records no sha256 for it")
        elif sha256_file(os.path.join(base, name)) != expected:
            info.status = "corrupt"
            info.problems.append(f"{name}: sha256 differs from {recorded_in} (file changed or damaged)")
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
    if storage.is_url(path):
        info, loaded = remote.load(str(path), files, verify_hashes=verify, trust_pickle=trust_pickle, framework=framework)
        return LoadedCheckpoint(info, loaded)
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
