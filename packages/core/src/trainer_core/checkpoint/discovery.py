"""Finding checkpoints under paths, across packages, from metadata alone.

The walk reads one small manifest per engine checkpoint and stats the files it names; it never
opens a weight file, never imports torch or jax, and does not descend into checkpoints.
Layouts may claim paths without a manifest (legacy formats) through ``recognise``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from trainer_core import storage
from trainer_core.checkpoint import manifest as mf
from trainer_core.checkpoint import remote
from trainer_core.checkpoint.atomic import TMP_PREFIX
from trainer_core.errors import UsageError
from trainer_core.layouts import CheckpointInfo, CheckpointLayout

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})


def _unfinished(path: str) -> CheckpointInfo:
    info = CheckpointInfo(path=path, status="incomplete")
    info.problems.append("unfinished save (a crash, or a save in progress); the next run in this directory removes it")
    return info


class _Walker:
    def __init__(self, layouts: Mapping[str, CheckpointLayout], check_plugins: bool = False) -> None:
        self.layouts = layouts
        self.check_plugins = check_plugins
        self.foreign = [layout for layout in layouts.values() if type(layout).recognise is not CheckpointLayout.recognise]
        self.found: list[CheckpointInfo] = []

    def add(self, info: CheckpointInfo) -> None:
        layout = self.layouts.get(info.layout)
        if layout is not None:
            info = layout.refine(info)
        if not self.check_plugins or info.status != "ok":
            pass
        elif layout is None:
            info.status = "no-plugin"
            info.problems.append(f"no installed plugin registers layout {info.layout!r}: install {info.package} to load it")
        elif info.layout_version is not None and info.layout_version > layout.version:
            info.status = "plugin-older"
            info.problems.append(
                f"written with layout {layout.name} v{info.layout_version}; the installed {layout.package} reads up to v{layout.version}: upgrade it"
            )
        self.found.append(info)

    def claim(self, path: str, is_dir: bool) -> bool:
        for layout in self.foreign:
            if layout.recognise(path, is_dir):
                self.found.append(layout.describe(path))
                return True
        return False

    def visit_dir(self, path: str) -> None:
        info = mf.try_describe(path, os.path.join(path, mf.MANIFEST_NAME), path)
        if info is not None:
            self.add(info)
            return
        if self.foreign and self.claim(path, True):
            return
        try:
            entries = list(os.scandir(path))
        except (PermissionError, NotADirectoryError, FileNotFoundError):
            return
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                if name.startswith(TMP_PREFIX):
                    self.found.append(_unfinished(entry.path))
                continue
            if entry.is_dir(follow_symlinks=False):
                if name not in SKIP_DIRS:
                    self.visit_dir(entry.path)
            elif name.endswith(mf.SIDECAR_SUFFIX):
                self.add(mf.describe(entry.path[: -len(mf.SIDECAR_SUFFIX)], entry.path, path))
            elif self.foreign and not os.path.exists(entry.path + mf.SIDECAR_SUFFIX):
                self.claim(entry.path, False)

    def visit_file(self, path: str) -> None:
        if path.endswith(mf.SIDECAR_SUFFIX):
            path = path[: -len(mf.SIDECAR_SUFFIX)]
        sidecar = mf.sidecar_path(path)
        info = mf.try_describe(path, sidecar, os.path.dirname(path))
        if info is not None:
            self.add(info)
        elif not self.claim(path, False):
            self.found.append(
                CheckpointInfo(
                    path=path, status="incomplete", problems=["no manifest: not written by trainer-core, or its save never finished"]
                )
            )


def find_checkpoints(
    paths: Iterable[str | os.PathLike], layouts: Mapping[str, CheckpointLayout], package: str | None = None, *, check_plugins: bool = False
) -> list[CheckpointInfo]:
    """Every checkpoint under ``paths`` (files or directories), optionally of one package.

    With ``check_plugins`` (what ``core list-checkpoints`` shows), a sound checkpoint whose layout
    no installed plugin registers is ``no-plugin``, and one written by a newer layout version than
    the installed plugin's is ``plugin-older``.
    """
    walker = _Walker(layouts, check_plugins)
    for raw in paths:
        if storage.is_url(raw):
            found_remote = remote.find(str(raw))
            if not found_remote and not remote.exists(str(raw)):
                raise UsageError(f"nothing at {raw}: check the bucket and prefix")
            for info in found_remote:
                if info.manifest_path:
                    walker.add(info)
                else:
                    walker.found.append(info)
            continue
        path = os.path.abspath(storage.local_path(raw))
        if os.path.isdir(path):
            walker.visit_dir(path)
        elif os.path.exists(path) or os.path.exists(mf.sidecar_path(path)):
            walker.visit_file(path)
        else:
            raise UsageError(f"no such file or directory: {raw}")
    found = walker.found
    if package is not None:
        found = [c for c in found if c.package == package]
    return found


def describe_path(path: str | os.PathLike, layouts: Mapping[str, CheckpointLayout], *, check_plugins: bool = True) -> CheckpointInfo:
    """Describe exactly one checkpoint at ``path`` (for ``core show``)."""
    raw = os.fspath(path)
    if storage.is_url(raw):
        info = remote.describe(raw)
        if info is None:
            raise UsageError(f"{raw} is not a checkpoint (no manifest.json); run `core list-checkpoints {raw}` to find the checkpoints inside")
        walker = _Walker(layouts, check_plugins)
        walker.add(info)
        return walker.found[0]
    path = os.path.abspath(storage.local_path(raw))
    if not os.path.exists(path) and not os.path.exists(mf.sidecar_path(path)):
        raise UsageError(f"no such file or directory: {raw}")
    walker = _Walker(layouts, check_plugins)
    if os.path.isdir(path):
        info = mf.try_describe(path, os.path.join(path, mf.MANIFEST_NAME), path)
        if info is not None:
            walker.add(info)
        elif not walker.claim(path, True):
            raise UsageError(
                f"{raw} is not a checkpoint (no manifest.json); run `core list-checkpoints {raw}` to find the checkpoints inside"
            )
    else:
        walker.visit_file(path)
    return walker.found[0]
