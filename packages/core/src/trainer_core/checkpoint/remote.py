"""Checkpoints on object storage (``s3://``, ``gs://``, ``memory://``, any fsspec URL).

Object stores have no rename, so the local protocol (temp folder, manifest, rename) cannot work
there. Instead, under a root URL, checkpoint ``<name>`` is::

    <root>/<name>/manifest.json             the commit: written last, conditionally
    <root>/<name>/.data/<save id>/<file>    one save's files; never overwritten

1. every file of a save is uploaded under a fresh, never reused ``.data/<save id>/`` prefix;
2. the manifest (sizes, sha256, ``data`` = the prefix) is written **last** with a conditional
   write: ``If-None-Match: *`` for a new name, ``If-Match: <ETag read before>`` to replace one.
   A writer whose view is stale (a zombie, or a racing second writer) fails with one line and
   cannot overwrite a newer commit;
3. a replaced save's prefix, and the data of a save that died before its manifest, are garbage:
   collected by ``core prune`` and when a manager opens the root, once older than a grace period
   (``TRAINER_CORE_REMOTE_GRACE``, seconds, default 6 hours), never a prefix a manifest names nor
   one this process is still uploading.

Listing reads one listing of the root plus the manifests (fetched concurrently), never a weight;
data without a manifest lists as ``incomplete``. Deleting removes the manifest first (again
conditionally), then the data. Verify re-hashes every object with bounded parallelism.

Conditional writes are the store's own on S3 (and S3-compatible servers: MinIO, moto). On other
filesystems (``memory://``, ``gs://`` through gcsfs...) the same checks run in this process
before the write, which protects against writers in this process only (documented in the README).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from trainer_core import storage
from trainer_core.checkpoint import manifest as mf
from trainer_core.checkpoint.atomic import HashingWriter, dumps_json
from trainer_core.checkpoint.serialization import load_file, snapshot
from trainer_core.errors import CheckpointError, CorruptCheckpointError, UsageError
from trainer_core.layouts import CheckpointInfo

DATA_DIR = ".data"
GRACE_S = 6 * 3600.0
HASH_WORKERS = 8
UPLOAD_WORKERS = 4
_UPLOADING: set[str] = set()  # data prefixes this process is writing (never collected)
_EMULATED = threading.Lock()  # the check-and-write of filesystems without conditional writes


class CommitConflictError(CheckpointError):
    """Another writer committed the same checkpoint name first (or meanwhile)."""


# --- conditional writes ---------------------------------------------------------------------
def _is_s3(fs: Any) -> bool:
    return "s3" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _revision(fs: Any, path: str, entry: Mapping[str, Any] | None = None) -> str | None:
    """The manifest object's version token: its ETag on S3, its sha256 elsewhere; None if absent."""
    if _is_s3(fs):
        try:
            entry = entry if entry is not None and entry.get("ETag") else fs.info(path)
        except FileNotFoundError:
            return None
        return entry.get("ETag")
    try:
        return hashlib.sha256(fs.cat_file(path)).hexdigest()
    except FileNotFoundError:
        return None


def put_conditional(fs: Any, path: str, data: bytes, revision: str | None) -> str:
    """Write ``data`` at ``path`` only if the object is absent (``revision`` None) or still at
    ``revision``; returns the new revision, or raises :class:`CommitConflictError`."""
    if _is_s3(fs):
        bucket, key, _ = fs.split_path(path)
        condition = {"IfNoneMatch": "*"} if revision is None else {"IfMatch": revision}
        try:
            reply = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
        except (FileExistsError, OSError) as exc:
            if "pre-condition" in str(exc).lower() or "precondition" in str(exc).lower() or isinstance(exc, FileExistsError):
                raise CommitConflictError(_conflict(path, revision)) from None
            raise
        fs.invalidate_cache(path)
        return reply.get("ETag") or ""
    with _EMULATED:
        if _revision(fs, path) != revision:
            raise CommitConflictError(_conflict(path, revision))
        fs.pipe_file(path, data)
    return hashlib.sha256(data).hexdigest()


def delete_conditional(fs: Any, path: str, revision: str | None) -> None:
    """Delete the object at ``path`` only while it is still at ``revision``."""
    if _is_s3(fs) and revision:
        bucket, key, _ = fs.split_path(path)
        try:
            fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=revision)
        except (FileExistsError, OSError) as exc:
            if "condition" in str(exc).lower():
                raise CommitConflictError(f"{path} changed since it was read (another writer committed it); left in place") from None
            raise
        fs.invalidate_cache(path)
        return
    with _EMULATED:
        if revision is not None and _revision(fs, path) != revision:
            raise CommitConflictError(f"{path} changed since it was read (another writer committed it); left in place")
        fs.rm_file(path)


def _conflict(path: str, revision: str | None) -> str:
    name = storage.basename(storage.parent(path))
    if revision is None:
        return (f"checkpoint {name} was committed by another writer first ({storage.parent(path)}); "
                "nothing of this save was published: give another output location or resume that run")  # fmt: skip
    return (f"checkpoint {name} was replaced by another writer since this run read it ({storage.parent(path)}); "
            "this save was not published and the newer one is intact: is a second run writing here?")  # fmt: skip


# --- writing ----------------------------------------------------------------------------------
def payload_bytes(name: str, data: Any) -> bytes:
    """The bytes of one checkpoint file (serialised by suffix when not bytes already)."""
    return serialised(name, data)[0]


def serialised(name: str, data: Any) -> tuple[bytes, str | None]:
    """(bytes, sha256 or None): a value serialised through a hashing buffer comes with its hash."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), None
    if not callable(data):
        data = snapshot(name, data, copy=False)
        if isinstance(data, bytes):
            return data, None
    buffer = _Buffer()
    data(buffer)
    return buffer.getvalue(), buffer.sha256.hexdigest()


class _Buffer(HashingWriter):
    """An in-memory file that hashes what is written (on a helper thread for large chunks)."""

    def __init__(self) -> None:
        import io

        self._io = io.BytesIO()
        super().__init__(self._io)

    def getvalue(self) -> bytes:
        return self._io.getvalue()


def new_save_id() -> str:
    return f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(4)}"


def _upload(fs: Any, path: str, data: bytes, digest: str | None = None) -> tuple[int, str]:
    """Upload one object; its sha256 (unless known) is computed on a helper thread meanwhile."""
    found: list[str] = [digest] if digest else []
    hasher = None if digest else threading.Thread(target=lambda: found.append(hashlib.sha256(data).hexdigest()))
    if hasher is not None:
        hasher.start()
    try:
        if _is_s3(fs):
            fs.pipe_file(path, data, max_concurrency=4)
        else:
            fs.pipe_file(path, data)
    finally:
        if hasher is not None:
            hasher.join()
    return len(data), found[0]


def _put_file(fs: Any, base: str, file_name: str, data: Any) -> tuple[int, str]:
    if not mf.safe_member_name(file_name) or file_name == mf.MANIFEST_NAME:
        raise UsageError(f"invalid checkpoint file name {file_name!r}: use a plain name like model.safetensors")
    blob, digest = serialised(file_name, data)
    return _upload(fs, f"{base}/{file_name}", blob, digest)


def commit(root: str, name: str, payloads: Mapping[str, Any], fields: dict[str, Any], *, replace: bool = True) -> str:
    """Commit checkpoint ``name`` under ``root`` (see the module docstring); returns its URL."""
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"invalid checkpoint name {name!r}: use a plain name")
    fs, inner = storage.filesystem(root)
    target = f"{inner}/{name}"
    manifest_path = f"{target}/{mf.MANIFEST_NAME}"
    previous = _revision(fs, manifest_path)  # read before uploading: a newer commit meanwhile wins
    if previous is not None and not replace:
        raise CommitConflictError(_conflict(manifest_path, None))
    replaced = _named_prefix(fs, manifest_path) if previous is not None else None
    save_id = new_save_id()
    prefix = f"{DATA_DIR}/{save_id}"
    _UPLOADING.add(f"{target}/{prefix}")
    try:
        names = list(payloads)
        with ThreadPoolExecutor(max_workers=max(1, min(UPLOAD_WORKERS, len(names)))) as pool:  # files serialised and sent concurrently
            done = list(pool.map(lambda n: _put_file(fs, f"{target}/{prefix}", n, payloads[n]), names))
        files = {n: {"size": size, "sha256": digest} for n, (size, digest) in zip(names, done, strict=True)}
        manifest = mf.build_manifest(files=files, **fields)
        manifest["data"] = prefix
        try:
            put_conditional(fs, manifest_path, dumps_json(manifest), previous)
        except BaseException:
            _remove_quietly(fs, f"{target}/{prefix}")
            raise
        if replaced and replaced != prefix:  # the save this commit replaced: no manifest names it now
            _remove_quietly(fs, f"{target}/{replaced}")
    finally:
        _UPLOADING.discard(f"{target}/{prefix}")
    return storage.join(root, name)


def _remove_quietly(fs: Any, path: str) -> None:
    try:
        fs.rm(path, recursive=True)
    except (FileNotFoundError, OSError):
        pass


def _named_prefix(fs: Any, manifest_path: str) -> str | None:
    """The data prefix a manifest names (None if unreadable)."""
    try:
        prefix = json.loads(fs.cat_file(manifest_path)).get("data")
    except (OSError, ValueError, AttributeError):
        return None
    return prefix if mf.safe_member_name(prefix) and str(prefix).startswith(f"{DATA_DIR}/") else None


def _grace() -> float:
    return float(os.environ.get("TRAINER_CORE_REMOTE_GRACE", GRACE_S))


def _mtime(entry: Mapping[str, Any]) -> float:
    value = entry.get("LastModified") or entry.get("mtime") or entry.get("created") or entry.get("updated")
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0


# --- listing ----------------------------------------------------------------------------------
def _scan(fs: Any, inner: str) -> dict[str, dict[str, Any]]:
    """Every object under ``inner`` in one (paginated) listing: path -> entry."""
    fs.invalidate_cache(inner)  # other processes write here: never answer from a stale listing
    try:
        return fs.find(inner, detail=True)
    except FileNotFoundError:
        return {}


def _group(objects: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, Any]]]]:
    """(manifest entry per checkpoint path, data objects per checkpoint path and prefix)."""
    manifests: dict[str, Any] = {}
    data: dict[str, dict[str, dict[str, Any]]] = {}
    marker = f"/{DATA_DIR}/"
    for path, entry in objects.items():
        if marker in path:
            owner, _, rest = path.partition(marker)
            save_id, _, member = rest.partition("/")
            data.setdefault(owner, {}).setdefault(f"{DATA_DIR}/{save_id}", {})[member] = entry
        elif path.endswith("/" + mf.MANIFEST_NAME):
            manifests[path[: -len(mf.MANIFEST_NAME) - 1]] = entry
    return manifests, data


def _fetch_all(fs: Any, paths: list[str]) -> dict[str, bytes | Exception]:
    if not paths:
        return {}
    return fs.cat(paths, on_error="return")


def describe_from(url_of: Callable[[str], str], path: str, raw: bytes | Exception, entry: Mapping[str, Any] | None,
                  objects: Mapping[str, Mapping[str, Any]], fs: Any) -> CheckpointInfo:  # fmt: skip
    """A checkpoint's description from its manifest bytes and the listing's sizes (no more requests)."""
    url = url_of(path)
    info = CheckpointInfo(path=url, manifest_path=f"{url}/{mf.MANIFEST_NAME}")
    try:
        if isinstance(raw, Exception):
            raise raw
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or manifest.get("format") != mf.FORMAT or not isinstance(manifest.get("files"), dict):
            raise ValueError("not a trainer-core manifest")
    except (OSError, ValueError) as exc:
        info.status = "corrupt"
        info.problems.append(f"unreadable manifest: {exc}")
        return info
    data = manifest.get("data")  # absent: a local checkpoint folder copied as it is (files beside the manifest)
    problem = mf.manifest_problem(manifest) or (None if data is None or mf.safe_member_name(data) else "'data' must name the save's prefix")
    if problem is not None:
        info.status = "corrupt"
        info.problems.append(f"malformed manifest: {problem}")
        return info
    mf.fill_info(info, manifest, _mtime(entry or {}) or None)
    info.extra = {**info.extra}
    info.revision = _revision(fs, f"{path}/{mf.MANIFEST_NAME}", entry)
    total = 0
    for name, file_entry in info.files.items():
        found = objects.get(_member(path, data, name))
        if found is None:
            info.status = "corrupt"
            info.problems.append(f"missing file {name}")
            continue
        actual = int(found.get("size") or 0)
        total += actual
        if actual != file_entry.get("size"):
            info.status = "corrupt"
            info.problems.append(f"{name} is {actual} bytes, manifest says {file_entry.get('size')} (truncated or replaced)")
    info.size = total
    info.data_prefix = data
    return info


def _member(checkpoint: str, data: str | None, name: str) -> str:
    """Where file ``name`` of a checkpoint lives: under its save's prefix, or beside the manifest."""
    return f"{checkpoint}/{data}/{name}" if data else f"{checkpoint}/{name}"


def _unfinished(url: str, prefix: str) -> CheckpointInfo:
    info = CheckpointInfo(path=url, status="incomplete")
    info.problems.append(f"data without a manifest ({prefix}): a save that never finished, or one in progress; "
                         "`core prune` removes it once older than the grace period")  # fmt: skip
    return info


def find(url: str, layout: str | None = None) -> list[CheckpointInfo]:
    """Every checkpoint under ``url`` (at any depth), committed or not, sorted by step."""
    fs, inner = storage.filesystem(url)
    objects = _scan(fs, inner)
    manifests, data = _group(objects)
    def url_of(path: str) -> str:
        return url.rstrip("/") + path[len(inner) :]

    raws = _fetch_all(fs, [f"{p}/{mf.MANIFEST_NAME}" for p in manifests])
    found = [describe_from(url_of, p, raws.get(f"{p}/{mf.MANIFEST_NAME}", FileNotFoundError(p)), manifests[p], objects, fs) for p in manifests]
    for owner, prefixes in data.items():
        if owner not in manifests:
            found.append(_unfinished(url_of(owner), ", ".join(sorted(prefixes))))
    if layout is not None:
        found = [c for c in found if c.layout == layout]
    found.sort(key=lambda c: (c.step if c.step is not None else -1, c.created or "", c.path))
    return found


def list_direct(url: str, layout: str | None = None) -> list[CheckpointInfo]:
    """Committed checkpoints directly inside ``url`` (one level), sorted by recorded step."""
    depth = url.rstrip("/").count("/") + 1
    return [c for c in find(url, layout) if c.path.count("/") == depth and c.status != "incomplete"]


def describe(url: str) -> CheckpointInfo | None:
    """One checkpoint at ``url``; None when nothing is there."""
    found = [c for c in find(url) if c.path.rstrip("/") == url.rstrip("/")]
    return found[0] if found else None


def exists(url: str) -> bool:
    fs, inner = storage.filesystem(url)
    return fs.exists(inner)


# --- verifying, loading, deleting -------------------------------------------------------------
def _hash_object(fs: Any, path: str, sink: Callable[[bytes], None] | None = None) -> str:
    digest = hashlib.sha256()
    fs.invalidate_cache(path)  # the object as it is now, not as an earlier listing saw it
    with fs.open(path, "rb", block_size=8 << 20, cache_type="none") as f:
        while block := f.read(8 << 20):
            digest.update(block)
            if sink is not None:
                sink(block)
    return digest.hexdigest()


def verify(url: str, *, hashes: bool = True) -> CheckpointInfo:
    """Describe and (with ``hashes``) re-hash every object, ``HASH_WORKERS`` at a time."""
    info = describe(url)
    if info is None:
        info = CheckpointInfo(path=url, status="incomplete", problems=["no manifest: not a committed trainer-core checkpoint"])
    if info.status != "ok" or not hashes:
        return info
    fs, inner = storage.filesystem(url)
    names = list(info.files)
    with ThreadPoolExecutor(max_workers=min(HASH_WORKERS, max(1, len(names)))) as pool:
        digests = list(pool.map(lambda n: _hash_object(fs, _member(inner, info.data_prefix, n)), names))
    for name, digest in zip(names, digests, strict=True):
        if digest != info.files[name].get("sha256"):
            info.status = "corrupt"
            info.problems.append(f"{name}: sha256 differs from the manifest (object changed or damaged)")
    return info


def load(url: str, wanted: Iterable[str] | None, *, verify_hashes: bool, trust_pickle: bool, framework: str) -> tuple[CheckpointInfo, dict[str, Any]]:
    """Download a committed checkpoint's files (hashing them as they arrive) and load them safely."""
    info = describe(url)
    if info is None:
        raise UsageError(f"no checkpoint at {url}: check the URL (`core list-checkpoints {storage.parent(url)}` shows what exists)")
    if info.status != "ok":
        raise CorruptCheckpointError(f"{url} is {info.status}: {'; '.join(info.problems)}")
    fs, inner = storage.filesystem(url)
    names = list(wanted) if wanted is not None else list(info.files)
    for name in names:
        if name not in info.files:
            raise CheckpointError(f"{url} has no file {name!r}; it has {sorted(info.files)}")
    loaded = {}
    with tempfile.TemporaryDirectory(prefix="trainer-core-remote-") as tmp:
        for name in names:
            local = os.path.join(tmp, name.replace("/", "_"))
            with open(local, "wb") as out:
                digest = _hash_object(fs, _member(inner, info.data_prefix, name), out.write)
            if verify_hashes and digest != info.files[name].get("sha256"):
                raise CorruptCheckpointError(f"{url}: {name} does not match its sha256 in the manifest (object changed or damaged)")
            loaded[name] = load_file(local, trust_pickle=trust_pickle, framework=framework)
    return info, loaded


def delete(info: CheckpointInfo) -> None:
    """Delete a committed checkpoint: its manifest first (only if unchanged since listed), then
    its data; a crash between leaves data without a manifest, which lists as incomplete."""
    fs, inner = storage.filesystem(info.path)
    delete_conditional(fs, f"{inner}/{mf.MANIFEST_NAME}", getattr(info, "revision", None))
    if info.data_prefix:
        _remove_quietly(fs, f"{inner}/{DATA_DIR}")
    else:  # a copied folder: the files its manifest named
        for name in info.files:
            _remove_quietly(fs, _member(inner, None, name))


def collect_garbage(url: str, *, grace_s: float | None = None, dry_run: bool = False) -> list[str]:
    """Remove data prefixes under ``url`` that no manifest names, once older than the grace period;
    returns their URLs. A prefix a manifest names, or one this process is uploading, is never removed."""
    grace = _grace() if grace_s is None else grace_s
    fs, inner = storage.filesystem(url)
    objects = _scan(fs, inner)
    manifests, data = _group(objects)
    named: dict[str, str | None] = {}
    raws = _fetch_all(fs, [f"{p}/{mf.MANIFEST_NAME}" for p in manifests])
    for path in manifests:
        raw = raws.get(f"{path}/{mf.MANIFEST_NAME}")
        try:
            named[path] = json.loads(raw).get("data") if isinstance(raw, bytes) else None
        except ValueError:
            named[path] = None
    removed = []
    now = time.time()
    for owner, prefixes in data.items():
        if owner in manifests and named.get(owner) is None:
            continue  # an unreadable manifest: nobody can tell which prefix it names; leave all
        for prefix, members in prefixes.items():
            full = f"{owner}/{prefix}"
            if prefix == named.get(owner) or full in _UPLOADING:
                continue
            if now - max((_mtime(e) for e in members.values()), default=0.0) < grace:
                continue
            removed.append(url.rstrip("/") + full[len(inner) :])
            if not dry_run:
                _remove_quietly(fs, full)
    return removed


def download_tree(url: str, local_dir: str) -> list[str]:
    """Copy the plain files directly under ``url`` (a run's metrics, config) into ``local_dir``."""
    fs, inner = storage.filesystem(url)
    fs.invalidate_cache(inner)
    try:
        entries = fs.ls(inner, detail=True)
    except FileNotFoundError:
        return []
    os.makedirs(local_dir, exist_ok=True)
    got = []
    for entry in entries:
        if entry.get("type") == "file":
            name = entry["name"].rstrip("/").rpartition("/")[2]
            fs.get_file(entry["name"], os.path.join(local_dir, name))
            got.append(name)
    return got


def upload_tree(local_dir: str, url: str, skip: Iterable[str] = ()) -> None:
    """Copy the files of a run's local folder (metrics, config, event files) to ``url``."""
    fs, inner = storage.filesystem(url)
    skipped = set(skip)
    for folder, dirs, names in os.walk(local_dir):
        dirs[:] = [d for d in dirs if d not in skipped and not d.startswith(".")]
        for name in names:
            if name.startswith(".") or name in skipped:
                continue
            local = os.path.join(folder, name)
            rel = os.path.relpath(local, local_dir).replace(os.sep, "/")
            fs.put_file(local, f"{inner}/{rel}")
