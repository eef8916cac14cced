"""The checkpoint manager: a run's saves, named by its layout, committed (in the background when
asked), retained by policy, with the save hooks fired around each commit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from trainer_core import storage
from trainer_core.checkpoint.commit import commit_directory, commit_directory_ranked, commit_file, delete_checkpoint, gather_rank_parts
from trainer_core.checkpoint.loading import describe_checkpoint, list_committed, verify_checkpoint
from trainer_core.checkpoint.recovery import recover
from trainer_core.checkpoint.retention import RetentionPolicy, plan_deletion
from trainer_core.checkpoint.serialization import snapshot
from trainer_core.checkpoint.writer import AsyncWriter
from trainer_core.distributed import SINGLE
from trainer_core.errors import CheckpointError, UsageError
from trainer_core.layouts import CheckpointInfo


class CheckpointManager:
    """Saves a run's checkpoints into ``directory`` through the commit protocol above.

    ``state`` given to :meth:`save` maps file names to values; the suffix picks the format (see
    :mod:`trainer_core.checkpoint.serialization`). With ``single_file=True`` each checkpoint is one file named
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
        run_id: str | None = None,
        world: Any = None,
    ) -> None:
        self.remote = storage.is_url(directory)  # object storage: commits without rename (checkpoint.remote)
        if self.remote:
            self.directory: Any = str(directory).rstrip("/")
            storage.filesystem(self.directory)  # a missing extra says so now, not at the first save
        else:
            self.directory = Path(storage.local_path(directory)).absolute()
            self.directory.mkdir(parents=True, exist_ok=True)
        self.package, self.layout, self.layout_version, self.kind = package, layout, layout_version, kind
        self.name_format = name_format
        self.single_file = single_file
        self.retention = retention
        self.hooks = hooks
        self.run = run
        self.run_id = run_id  # recorded in each manifest; retention ranks only this run's checkpoints
        self._sound: dict[tuple, bool] = {}  # verified checkpoints, keyed by the stat of their files
        self.world = world if world is not None else SINGLE  # under torchrun: every rank saves its part
        self._saves = 0  # every rank counts its saves alike: the count names each save's keys in the store
        self.recovered = recover(self.directory) if self.world.main else []
        self._writer = AsyncWriter() if async_save else None
        self._staging: dict = {}  # host buffers reused by successive async snapshots
        self.on_commit: Any = None  # called by rank 0 after each commit (a remote run syncs its files)

    # paths never deleted by retention (e.g. the checkpoint a run resumed from)
    def protect(self, path: str | os.PathLike) -> None:
        if self.retention is not None:
            self.retention.protected.add(storage.absolute(path))

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
        if self.run_id is not None:
            extra.setdefault("run_id", self.run_id)
        self._saves += 1
        key = f"trainer_core/save/{self._saves}/{name}"
        if self.hooks is not None and self.world.main:
            for more in self.hooks.before_save(run=self.run, name=name, step=step, epoch=epoch, metrics=metrics):
                if more:
                    extra.update(more)
        if self.single_file and len(state) != 1:
            raise UsageError("a single-file checkpoint holds exactly one file")
        if self._writer is not None:
            self._writer.wait()  # at most one save in flight; surfaces an earlier failure
        if self.world.multi and self.single_file:  # the ranks' small parts travel to rank 0's one file
            state = gather_rank_parts(state, self.world, key, name)
            extra.update(world_size=self.world.size, rank_files={str(r): [name] for r in range(self.world.size)})
            if not self.world.main:
                return self._await_outcome(name, key)
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
            if self.remote:
                return self._finish(self._commit_remote(name, payloads, fields, key), key)
            target = self.directory / name
            if self.single_file and self.world.multi:
                try:
                    commit_file(target, next(iter(payloads.values())), fields)
                except BaseException as exc:
                    self.world.publish(f"{key}/outcome", f"{type(exc).__name__}: {exc}")
                    raise
                self.world.publish(f"{key}/outcome", "ok")
            elif self.single_file:
                commit_file(target, next(iter(payloads.values())), fields)
            elif self.world.multi:
                commit_directory_ranked(target, payloads, fields, self.world, key)
            else:
                commit_directory(target, payloads, fields)
            return self._finish(describe_checkpoint(target), key)

        if self._writer is not None:
            return self._writer.submit(job)
        return job()

    def _commit_remote(self, name: str, payloads: Mapping[str, Any], fields: dict[str, Any], key: str) -> CheckpointInfo:
        """Object storage: rank 0 uploads the files and commits the manifest conditionally (a
        directory layout under torchrun gathers nothing: every rank's state is rank 0's to write,
        so other ranks only learn the outcome)."""
        from trainer_core.checkpoint import remote

        if self.world.multi and not self.single_file:
            payloads = self._gather_parts(payloads, key, name)
        if self.world.multi and not self.world.main:
            outcome = self.world.receive(f"{key}/outcome", f"rank 0's commit of {name}")
            if outcome != "ok":
                raise CheckpointError(f"checkpoint {name} was not committed: {outcome}")
            return CheckpointInfo(path=storage.join(self.directory, name))
        try:
            url = remote.commit(self.directory, name, payloads, fields)
        except BaseException as exc:
            if self.world.multi:
                self.world.publish(f"{key}/outcome", f"{type(exc).__name__}: {exc}")
            raise
        if self.world.multi:
            self.world.publish(f"{key}/outcome", "ok")
        return describe_checkpoint(url)

    def _gather_parts(self, payloads: Mapping[str, Any], key: str, name: str) -> Mapping[str, Any]:
        """A directory layout under torchrun, to object storage: each rank's own files travel
        through the store to rank 0, which uploads them with its own under one manifest."""
        import json

        from trainer_core.checkpoint.remote import payload_bytes

        if not self.world.main:
            try:
                parts = {file_name: payload_bytes(file_name, data) for file_name, data in payloads.items()}
                self.world.publish(f"{key}/part/{self.world.rank}", json.dumps(sorted(parts)))
            except Exception as exc:  # noqa: BLE001 - reported to rank 0, then raised here
                self.world.publish(f"{key}/part/{self.world.rank}", json.dumps({"error": f"rank {self.world.rank}: {exc}"}))
                raise
            for file_name, data in parts.items():
                self.world.publish(f"{key}/part/{self.world.rank}/{file_name}", data)
            return payloads
        gathered = dict(payloads)
        try:
            for rank in range(1, self.world.size):
                names = json.loads(self.world.receive(f"{key}/part/{rank}", f"rank {rank}'s part of checkpoint {name}"))
                if isinstance(names, dict):
                    raise CheckpointError(names["error"])
                for file_name in names:
                    gathered[file_name] = self.world.receive_bytes(f"{key}/part/{rank}/{file_name}", f"rank {rank}'s {file_name}")
        except BaseException as exc:
            self.world.publish(f"{key}/outcome", f"{type(exc).__name__}: {exc}")
            raise
        return gathered

    def _finish(self, info: CheckpointInfo, key: str) -> CheckpointInfo:
        if self.world.main:  # retention and the save hooks: once, by rank 0
            self.apply_retention()
            if self.hooks is not None:
                self.hooks.after_save(run=self.run, checkpoint=info)
            if self.on_commit is not None:
                self.on_commit(info)
        return info

    def _await_outcome(self, name: str, key: str) -> Future | CheckpointInfo:
        """A rank other than 0 of a single-file layout: rank 0 commits; this rank learns how it went."""

        def job() -> CheckpointInfo:
            outcome = self.world.receive(f"{key}/outcome", f"rank 0's commit of {name}")
            if outcome != "ok":
                raise CheckpointError(f"checkpoint {name} was not committed: {outcome}")
            where = storage.join(self.directory, name) if self.remote else self.directory / name
            return CheckpointInfo(path=str(where)) if self.remote else describe_checkpoint(where)

        return self._writer.submit(job) if self._writer is not None else job()

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
        """Delete what the policy drops among this run's checkpoints, once every checkpoint it
        keeps has been re-hashed (a corrupt one never counts as kept)."""
        if self.retention is None:
            return []
        mine = [c for c in self.checkpoints() if self.run_id is None or c.extra.get("run_id") == self.run_id]
        doomed, _ = plan_deletion(self.retention, mine, self._is_sound)
        for info in doomed:
            delete_checkpoint(info)
        return doomed

    def _is_sound(self, info: CheckpointInfo) -> bool:
        if self.remote:  # keyed by the manifest's ETag: a recommit is checked again
            key = (info.path, info.revision)
            if key not in self._sound:
                self._sound[key] = verify_checkpoint(info.path).status == "ok"
            return self._sound[key]
        base = info.path if os.path.isdir(info.path) else os.path.dirname(info.path)
        stats = []
        for name in info.files:
            try:
                st = os.stat(os.path.join(base, name))
            except OSError:
                return False
            stats.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        key = (info.path, info.modified, tuple(stats))  # a file rewritten since its check is checked again
        if key not in self._sound:
            self._sound[key] = verify_checkpoint(info.path).status == "ok"
        return self._sound[key]
