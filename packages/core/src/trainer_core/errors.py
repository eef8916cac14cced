"""Errors a user can act on. The CLI prints ``error: <message>`` and exits with ``exit_code``."""

from __future__ import annotations


class TrainerCoreError(Exception):
    """Base class: one clear line naming the problem and the fix."""

    exit_code = 1


class UsageError(TrainerCoreError):
    """Bad command-line usage or a missing input file."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or override is invalid (unknown key, wrong type, missing file)."""


class CheckpointError(TrainerCoreError):
    """A checkpoint cannot be read or written."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint's files do not match its manifest, or its manifest is unreadable."""


class UnsafeCheckpointError(CheckpointError):
    """A file would need unpickling arbitrary code to load; refused unless trusted explicitly."""


class DivergedError(TrainerCoreError):
    """Training produced a non-finite loss; the run stopped, its checkpoints untouched."""
