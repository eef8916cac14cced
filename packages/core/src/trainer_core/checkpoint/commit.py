"""Committing a checkpoint atomically, and deleting one so no crash leaves a complete-looking half.

See :mod:`trainer_core.checkpoint` for the protocol.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer_core.checkpoint import manifest as mf
from trainer_core.checkpoint.atomic import TMP_PREFIX, dumps_json, exchange, fsync_dir, temp_sibling, write_durable
from trainer_core.checkpoint.serialization import bytes_of, snapshot
from trainer_core.errors import CheckpointError, UsageError
from trainer_core.layouts import CheckpointInfo

OLD_PREFIX = ".old-"


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
        _finish_directory(tmp, target, files, fields)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def commit_directory_ranked(target: Path, payloads: Mapping[str, Any], fields: dict[str, Any], world: Any, key: str) -> Path:
    """The commit of a multi-rank checkpoint: every rank writes its own files into one temporary
    directory (rank 0 names it, through the store); each reports its files' hashes (or its error);
    rank 0 waits for every report (with the world's timeout), writes the manifest last, with the
    world size and each rank's files, and renames; the outcome reaches every rank, so a failed save
    raises everywhere and no manifest ever exists without every rank's files."""
    import json

    target = Path(target)
    if world.main:
        tmp = temp_sibling(target)
        tmp.mkdir()
        world.publish(f"{key}/tmp", tmp.name)
    else:
        tmp = target.parent / world.receive(f"{key}/tmp", f"the name of checkpoint {target.name}'s temporary folder")
    try:
        report: dict[str, Any] = {"files": _write_files(tmp, payloads)}
    except Exception as exc:  # noqa: BLE001 - every failure is reported to rank 0, then raised here
        report = {"error": f"rank {world.rank}: {type(exc).__name__}: {exc}"}
    world.publish(f"{key}/part/{world.rank}", json.dumps(report))
    if not world.main:
        outcome = world.receive(f"{key}/outcome", f"rank 0's commit of {target.name}")
        if outcome != "ok":
            raise CheckpointError(f"checkpoint {target.name} was not committed: {outcome}")
        if "error" in report:
            raise CheckpointError(report["error"])
        return target
    try:
        files: dict[str, Any] = {}
        per_rank: dict[str, list[str]] = {}
        for rank in range(world.size):
            part = json.loads(world.receive(f"{key}/part/{rank}", f"rank {rank}'s part of checkpoint {target.name}"))
            if "error" in part:
                raise CheckpointError(part["error"])
            files.update(part["files"])
            per_rank[str(rank)] = sorted(part["files"])
        fields = {**fields, "extra": {**fields.get("extra", {}), "world_size": world.size, "rank_files": per_rank}}
        _finish_directory(tmp, target, files, fields)
    except BaseException as exc:
        world.publish(f"{key}/outcome", f"{type(exc).__name__}: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    world.publish(f"{key}/outcome", "ok")
    return target


def gather_rank_parts(state: Mapping[str, Any], world: Any, key: str, name: str) -> Mapping[str, Any]:
    """The multi-rank save of a single-file layout: each rank's small part (its RNG states and
    position, ``{rank_file(r): part}``) travels through the store to rank 0, which puts them under
    ``rank_states`` in its one file; so the file is committed by rank 0 alone, and never without
    every rank's part. A rank whose part fails raises, and rank 0 passes its error on to all."""
    import io

    if not world.main:
        ((file_name, part),) = state.items()
        try:
            data = b"D" + bytes_of(file_name, part)
        except Exception as exc:  # noqa: BLE001 - reported to rank 0, then raised here
            data = f"Erank {world.rank}: {type(exc).__name__}: {exc}".encode()
        world.publish(f"{key}/part/{world.rank}", data)
        if data[:1] == b"E":
            raise CheckpointError(data[1:].decode())
        return state
    import torch

    ((file_name, value),) = state.items()
    parts: dict[str, Any] = {}
    try:
        for rank in range(1, world.size):
            data = world.receive_bytes(f"{key}/part/{rank}", f"rank {rank}'s part of checkpoint {name}")
            if data[:1] != b"D":
                raise CheckpointError(data[1:].decode(errors="replace"))
            parts[str(rank)] = torch.load(io.BytesIO(data[1:]), map_location="cpu", weights_only=True)
    except BaseException as exc:
        world.publish(f"{key}/outcome", f"{type(exc).__name__}: {exc}")
        raise
    return {file_name: {**value, "rank_states": parts}}


def _finish_directory(tmp: Path, target: Path, files: dict[str, Any], fields: dict[str, Any]) -> None:
    """Write the manifest last into ``tmp`` and put it in ``target``'s place atomically."""
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


def delete_checkpoint(info: CheckpointInfo) -> None:
    """Delete one engine checkpoint so that a crash midway never leaves a complete-looking one.

    A directory is renamed to a temp name first (it leaves listings at once; :func:`recover`
    finishes the job). A single file loses its manifest first (moved to a temp name), then data.
    """
    if not info.manifest_path:
        raise CheckpointError(f"{info.path} has no manifest; refusing to delete what core did not write")
    from trainer_core import storage

    if storage.is_url(info.path):
        from trainer_core.checkpoint import remote

        remote.delete(info)
        return
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
