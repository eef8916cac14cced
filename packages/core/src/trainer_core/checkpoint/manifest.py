"""The manifest: the JSON file written last that marks a checkpoint complete.

A directory checkpoint keeps it as ``<dir>/manifest.json``; a single-file checkpoint
``<file>`` keeps it beside the file as ``<file>.manifest.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from typing import Any

from trainer_core.layouts import CheckpointInfo

FORMAT = "trainer-core/checkpoint"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SIDECAR_SUFFIX = ".manifest.json"

# distributions whose versions are recorded when their module is loaded in the process
_TRACKED = {
    "torch": "torch",
    "jax": "jax",
    "flax": "flax",
    "optax": "optax",
    "numpy": "numpy",
    "safetensors": "safetensors",
    "torchvision": "torchvision",
}


@cache
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    core = _version("trainer-core")
    if core:
        versions["trainer-core"] = core
    for module, dist in _TRACKED.items():
        if module in sys.modules:
            v = _version(dist)
            if v:
                versions[dist] = v
    return versions


def build_manifest(
    *,
    package: str,
    layout: str,
    layout_version: int,
    kind: str,
    name: str,
    step: int,
    epoch: int | None,
    metrics: dict[str, Any],
    config_hash: str | None,
    files: dict[str, dict[str, Any]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    now = time.time()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package": package,
        "layout": layout,
        "layout_version": layout_version,
        "kind": kind,
        "name": name,
        "epoch": epoch,
        "step": step,
        "metrics": metrics,
        "config_hash": config_hash,
        "created": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "created_unix": now,
        "library_versions": library_versions(),
        "files": files,
        "extra": extra,
    }


def dumps_json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)


def sidecar_path(file_path: str) -> str:
    return file_path + SIDECAR_SUFFIX


def manifest_location(path: str) -> tuple[str, str]:
    """Return (manifest path, directory the manifest's file names are relative to)."""
    if os.path.isdir(path):
        return os.path.join(path, MANIFEST_NAME), path
    return sidecar_path(path), os.path.dirname(path) or "."


def read_manifest(manifest_path: str) -> tuple[dict[str, Any], float]:
    """Read and parse a manifest; returns (manifest, mtime). Raises OSError or ValueError."""
    fd = os.open(manifest_path, os.O_RDONLY)  # plain syscalls: listing reads thousands of these
    try:
        stat = os.fstat(fd)
        raw = os.read(fd, stat.st_size + 1)
        while len(raw) <= stat.st_size:  # a short read
            more = os.read(fd, stat.st_size + 1 - len(raw))
            if not more:
                break
            raw += more
    finally:
        os.close(fd)
    mtime = stat.st_mtime
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise ValueError("not a trainer-core manifest")
    return data, mtime


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def safe_member_name(name: Any) -> bool:
    """A file name a manifest may list: relative, inside the checkpoint (no ``..``, no absolute
    path, no NUL), so that reading or hashing it never leaves the checkpoint."""
    if not isinstance(name, str) or not name or "\x00" in name or name.startswith(("/", "\\")):
        return False
    parts = name.replace("\\", "/").split("/")
    return all(part not in ("", ".", "..") for part in parts)


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What makes a parsed manifest unusable (wrong types, names escaping the checkpoint), or None."""
    for key in ("package", "layout", "kind", "name"):
        if key in manifest and not isinstance(manifest[key], str):
            return f"{key!r} must be a string, not {type(manifest[key]).__name__}"
    for key in ("step", "epoch", "layout_version"):
        if manifest.get(key) is not None and not _is_int(manifest[key]):
            return f"{key!r} must be an integer, not {type(manifest[key]).__name__}"
    for key in ("metrics", "extra", "library_versions"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            return f"{key!r} must be a mapping, not {type(manifest[key]).__name__}"
    if manifest.get("created") is not None and not isinstance(manifest["created"], str):
        return "'created' must be a string"
    return files_problem(manifest["files"])


def files_problem(files: dict[str, Any]) -> str | None:
    """What makes a record of files (name -> ``{"size", "sha256"}``) unusable, or None: a name
    escaping the checkpoint, an entry without an integer size or a string sha256."""
    for name, entry in files.items():
        if not safe_member_name(name):
            return f"file name {name!r} is not inside the checkpoint"
        if not isinstance(entry, dict) or not _is_int(entry.get("size")) or not isinstance(entry.get("sha256"), str):
            return f"entry of {name!r} needs an integer 'size' and a string 'sha256'"
    return None


def describe(path: str, manifest_path: str, base_dir: str) -> CheckpointInfo:
    """Describe a checkpoint from its manifest and a stat of each file it names."""
    info = try_describe(path, manifest_path, base_dir)
    if info is None:
        info = CheckpointInfo(path=path, manifest_path=manifest_path, status="incomplete")
        info.problems.append("no manifest: not a committed trainer-core checkpoint (its save never finished, or another program wrote it)")
    return info


def fill_info(info: CheckpointInfo, manifest: dict[str, Any], mtime: float | None) -> None:
    """Copy a valid manifest's fields into ``info``."""
    info.package = manifest.get("package", "?")
    info.layout = manifest.get("layout", "?")
    info.layout_version = manifest.get("layout_version")
    info.kind = manifest.get("kind", "?")
    info.epoch = manifest.get("epoch")
    info.step = manifest.get("step")
    info.metrics = manifest.get("metrics") or {}
    info.config_hash = manifest.get("config_hash")
    info.created = manifest.get("created")
    info.modified = mtime
    info.extra = manifest.get("extra") or {}
    info.library_versions = manifest.get("library_versions") or {}
    info.files = manifest["files"]


def try_describe(path: str, manifest_path: str, base_dir: str) -> CheckpointInfo | None:
    """Like :func:`describe`, but None when there is no manifest at all (not a checkpoint)."""
    info = CheckpointInfo(path=path, manifest_path=manifest_path)
    try:
        manifest, mtime = read_manifest(manifest_path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        info.status = "corrupt"
        info.problems.append(f"unreadable manifest {os.path.basename(manifest_path)}: {exc}")
        return info
    problem = manifest_problem(manifest)
    if problem is not None:
        info.status = "corrupt"
        info.problems.append(f"malformed manifest {os.path.basename(manifest_path)}: {problem}")
        return info
    fill_info(info, manifest, mtime)
    info.size = check_file_sizes(info, base_dir)
    return info


def check_file_sizes(info: CheckpointInfo, base_dir: str, recorded_in: str = "manifest") -> int:
    """Stat every file of ``info.files`` in ``base_dir`` against its recorded size (a missing or
    resized file marks ``info`` corrupt); returns the bytes found. Listing's check: no hashing."""
    total = 0
    for name, entry in info.files.items():
        try:
            actual = os.stat(os.path.join(base_dir, name)).st_size
        except FileNotFoundError:
            info.status = "corrupt"
            info.problems.append(f"missing file {name}")
            continue
        total += actual
        expected = entry.get("size")
        if actual != expected:
            info.status = "corrupt"
            info.problems.append(f"{name} is {actual} bytes, {recorded_in} says {expected} (truncated or replaced)")
    return total
