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

Modules: :mod:`.atomic` (durable writes, temp names, fsync), :mod:`.manifest` (the record written
last), :mod:`.serialization` (formats by suffix, nothing unpickled), :mod:`.commit`,
:mod:`.recovery`, :mod:`.loading`, :mod:`.writer` (asynchronous saves), :mod:`.manager`,
:mod:`.retention` and :mod:`.discovery` (finding checkpoints across packages, metadata only).
"""

from __future__ import annotations

from trainer_core.checkpoint.commit import OLD_PREFIX, commit_directory, commit_file, delete_checkpoint
from trainer_core.checkpoint.loading import (
    LoadedCheckpoint,
    describe_checkpoint,
    find_resume_point,
    list_committed,
    load_checkpoint,
    verify_checkpoint,
    verify_hashes,
)
from trainer_core.checkpoint.manager import CheckpointManager
from trainer_core.checkpoint.recovery import recover, settle
from trainer_core.checkpoint.writer import AsyncWriter

__all__ = [
    "OLD_PREFIX",
    "AsyncWriter",
    "CheckpointManager",
    "LoadedCheckpoint",
    "commit_directory",
    "commit_file",
    "delete_checkpoint",
    "describe_checkpoint",
    "find_resume_point",
    "list_committed",
    "load_checkpoint",
    "recover",
    "settle",
    "verify_checkpoint",
    "verify_hashes",
]
