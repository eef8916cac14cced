"""Durable file-system primitives: fsync, atomic replace, hashing writers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import threading
from pathlib import Path
from typing import Any, BinaryIO

TMP_PREFIX = ".tmp-"


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def host_tag() -> str:
    """This machine's name as it appears in temp names (``@`` and path characters removed)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:63]
    return name or "localhost"


def temp_sibling(path: str | os.PathLike) -> Path:
    """A fresh hidden name next to ``path`` on the same file system (so rename is atomic):
    ``.tmp-<name>-<pid>-<random>@<host>``. The host tells recovery whose process it was: on a
    file system shared by several nodes, a pid means something only on its own host."""
    path = Path(path)
    return path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}-{secrets.token_hex(4)}@{host_tag()}")


PARALLEL_HASH_MIN = 4 << 20


class HashingWriter:
    """A binary file wrapper that hashes (sha256) and counts what goes through it.

    A large chunk is hashed on a helper thread while the file write proceeds (both release the
    GIL), so hashing costs little wall time on top of the write.
    """

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.size += view.nbytes
        if view.nbytes < PARALLEL_HASH_MIN:
            self.sha256.update(view)
            return self._raw.write(view)
        hasher = threading.Thread(target=self.sha256.update, args=(view,))
        hasher.start()
        try:
            return self._raw.write(view)
        finally:
            hasher.join()

    def flush(self) -> None:
        self._raw.flush()

    # torch.save and numpy probe these
    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.size


def write_durable(path: str | os.PathLike, data: bytes | memoryview | Any) -> tuple[int, str]:
    """Write ``data`` (bytes, or a callable taking a binary file) to ``path`` and fsync it.

    Returns ``(size, sha256 hex)`` computed while writing, so nothing is read back.
    """
    with open(path, "wb") as raw:
        writer = HashingWriter(raw)
        if callable(data):
            data(writer)
        else:
            writer.write(data)
        raw.flush()
        os.fsync(raw.fileno())
    return writer.size, writer.sha256.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes | Any) -> tuple[int, str]:
    """Replace ``path`` atomically: temp sibling, fsync, rename, fsync the directory."""
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        result = write_durable(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return result


def dumps_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode()


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, dumps_json(obj))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the platform or file system cannot, so the caller can fall back.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
        return False
    raise OSError(errno, os.strerror(errno), os.fspath(a))
