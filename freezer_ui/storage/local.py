"""Local file-system storage: one file per object under a root directory."""

from __future__ import annotations

import errno
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from freezer_ui.storage.base import (
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    validate_key,
    validate_prefix,
)

_READ_BLOCK = 1 << 20
# Temp files start with "." so that no valid key can name them and list() skips them.
_TMP_PREFIX = ".tmp-"


def _map_os_error(exc: OSError, key: str) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left writing {key!r}: {exc}")
    if exc.errno == errno.ENOENT:
        return ObjectNotFound(key)
    return StorageError(f"{key!r}: {exc}")


class LocalStorage(Storage):
    """Objects are files below ``root``; keys map 1:1 onto relative paths.

    ``put`` writes a temp file in the target directory, fsyncs it, then ``link``s it to the
    final name: ``link`` fails when the name exists, which gives write-once semantics that
    ``rename`` (which silently replaces) would not.  The directory is fsynced afterwards so
    the new name itself survives a power cut.
    """

    name = "local"

    def __init__(self, root: str, *, create: bool = True) -> None:
        if not os.path.isabs(root):
            raise StorageError(f"local storage root must be absolute: {root!r}")
        self.root = os.path.normpath(root)
        if create:
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise _map_os_error(exc, self.root) from exc
        elif not os.path.isdir(self.root):
            raise StorageError(f"local storage root does not exist: {self.root!r}")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> LocalStorage:
        if "://" in url:
            parts = urlsplit(url)
            if parts.scheme != "local" or parts.netloc not in ("", "localhost"):
                raise StorageError(f"not a local storage URL: {url!r}")
            path = unquote(parts.path)
        else:
            path = url
        return cls(os.path.abspath(path), **options)

    @property
    def url(self) -> str:
        return "local://" + self.root

    def __repr__(self) -> str:
        return f"LocalStorage({self.root!r})"

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *validate_key(key).split("/"))

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        directory = os.path.dirname(path)
        if os.path.lexists(path):
            raise ObjectExists(key)
        tmp = os.path.join(directory, _TMP_PREFIX + secrets.token_hex(8))
        size = 0
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _map_os_error(exc, key) from exc
        try:
            try:
                with os.fdopen(fd, "wb", buffering=0) as fh:
                    for chunk in chunks:
                        view = memoryview(chunk)
                        while view:
                            n = fh.write(view)
                            assert n is not None
                            view = view[n:]
                            size += n
                    os.fsync(fh.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise ObjectExists(key) from None
                _fsync_dir(directory)
            except OSError as exc:
                raise _map_os_error(exc, key) from exc
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return size

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except OSError as exc:
            raise _map_os_error(exc, key) from exc
        return self._stream(fh, key)

    @staticmethod
    def _stream(fh: Any, key: str) -> Iterator[bytes]:
        with fh:
            while True:
                try:
                    block = fh.read(_READ_BLOCK)
                except OSError as exc:
                    raise _map_os_error(exc, key) from exc
                if not block:
                    return
                yield block

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise _map_os_error(exc, key) from exc
        try:
            parts = []
            while length > 0:
                block = os.pread(fd, length, offset)
                if not block:
                    break
                parts.append(block)
                offset += len(block)
                length -= len(block)
            return b"".join(parts)
        except OSError as exc:
            raise _map_os_error(exc, key) from exc
        finally:
            os.close(fd)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix fixes, then filter by string prefix.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = os.path.join(self.root, *base.split("/")) if base else self.root
        if not os.path.isdir(start):
            return
        for dirpath, dirnames, filenames in os.walk(start):
            rel = os.path.relpath(dirpath, self.root)
            rel_key = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue
                key = rel_key + name
                if not key.startswith(prefix):
                    continue
                try:
                    size = os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    continue  # deleted while listing
                yield ObjectInfo(key, size)

    def remove_leftovers(self, older_than: float = 3600.0) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if not name.startswith(_TMP_PREFIX):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except OSError as exc:
            raise _map_os_error(exc, key) from exc

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
