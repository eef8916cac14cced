"""Where a path lives: a local path, or an fsspec URL (``s3://``, ``gs://``, ``memory://``...).

Every place that takes a checkpoint root or path accepts both. A URL is opened through fsspec;
the filesystem of a protocol comes from an optional extra (``trainer-core[s3]`` installs s3fs,
``trainer-core[gcs]`` gcsfs). Credentials and endpoints are configured as for the library
itself: for S3 the usual ``AWS_*`` variables, ``AWS_ENDPOINT_URL`` for a server other than AWS
(MinIO, moto), or ``FSSPEC_S3_ENDPOINT_URL``.
"""

from __future__ import annotations

import os
from typing import Any

from trainer_core.errors import UsageError

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}


def is_url(path: Any) -> bool:
    """True for a remote URL (``proto://...``); a ``file://`` URL counts as a local path."""
    if isinstance(path, os.PathLike) or not isinstance(path, str):
        return False
    protocol, sep, _ = path.partition("://")
    return bool(sep) and protocol.isidentifier() and protocol != "file"


def local_path(path: Any) -> str:
    """A local path from a path or ``file://`` URL."""
    text = os.fspath(path)
    return text[len("file://") :] if text.startswith("file://") else text


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for ``url``; one line naming the extra to install when
    the protocol's library is missing."""
    import fsspec

    protocol = url.split("://", 1)[0]
    try:
        fs, inner = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        extra = EXTRAS.get(protocol)
        hint = f"pip install 'trainer-core[{extra}]'" if extra else f"install the fsspec implementation of {protocol}://"
        raise UsageError(f"{protocol}:// needs a library that is not installed ({exc.name or exc}): {hint}") from None
    except ValueError as exc:
        raise UsageError(f"cannot open {url}: {exc}") from None
    return fs, inner.rstrip("/")


def join(url: str, *parts: str) -> str:
    """``url`` with ``parts`` appended by ``/``."""
    out = url.rstrip("/")
    for part in parts:
        if part:
            out += "/" + part.strip("/")
    return out


def parent(url: str) -> str:
    """The URL one level up (never above ``proto://bucket``)."""
    protocol, _, rest = url.rstrip("/").partition("://")
    head, sep, _ = rest.rpartition("/")
    return f"{protocol}://{head}" if sep else f"{protocol}://{rest}"


def basename(url: str) -> str:
    return url.rstrip("/").rpartition("/")[2] if is_url(url) else os.path.basename(os.fspath(url).rstrip(os.sep))


def absolute(path: Any) -> str:
    """A URL unchanged (without a trailing slash), a local path made absolute."""
    if is_url(path):
        return str(path).rstrip("/")
    return os.path.abspath(local_path(path))


# --- locations: a local Path or a URL string, handled alike by trainers -----------------------
def join_location(root: Any, *parts: str) -> Any:
    """``root/part/...``: a URL string for a URL root, a :class:`~pathlib.Path` otherwise."""
    from pathlib import Path

    if is_url(root):
        return join(str(root), *parts)
    return Path(local_path(root)).joinpath(*parts)


def location_exists(path: Any) -> bool:
    """True if a file or folder is at ``path``; for a URL, if any object is at or under it."""
    if not is_url(path):
        return os.path.exists(local_path(path))
    fs, inner = filesystem(str(path))
    fs.invalidate_cache(inner)
    return bool(fs.exists(inner))


def location_name(path: Any) -> str:
    """The last component of a path or URL."""
    return basename(os.fspath(path) if not isinstance(path, str) else path)
