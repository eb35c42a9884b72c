"""Base class and shared definitions for every storage implementation.

A storage is a flat, write-once key/value store of byte objects.  The repository layer
(``freezer_ui.repository``) is its only client, and everything the repository guarantees
about crash safety rests on the promises written in the docstrings below.  A new storage
(ssh, swift, s3, a third-party one) counts as done when it passes
``tests/storage/contract.py``.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar


class StorageError(Exception):
    """Any failure of a storage operation.  Subclasses say which one."""


class ObjectNotFound(StorageError):
    """The key does not exist."""


class ObjectExists(StorageError):
    """``put`` was asked to write a key that already exists (objects are write-once)."""


class StorageFull(StorageError):
    """The storage has no space left (ENOSPC or the service's quota error)."""


class InvalidKey(StorageError, ValueError):
    """The key breaks the rules of :func:`validate_key`."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key and its size in bytes."""

    key: str
    size: int


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid storage key, else raise :class:`InvalidKey`.

    A key is a relative POSIX path such as ``data/ab/ab12...``.  Every rule is about safety:
    storages map keys onto file systems and URLs, so a key must never be able to name
    anything outside the storage.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"storage key must be a non-empty string, got {key!r}")
    # security: a key must stay inside the storage root, so it must be relative.
    if key.startswith("/"):
        raise InvalidKey(f"storage key must be relative: {key!r}")
    # security: backslashes are separators on some back ends, NULs truncate C strings.
    if "\\" in key or _CONTROL.search(key):
        raise InvalidKey(f"storage key contains a backslash or control character: {key!r}")
    for part in key.split("/"):
        # empty parts ("a//b", trailing "/") name directories, not objects.
        if not part:
            raise InvalidKey(f"storage key has an empty path component: {key!r}")
        # security: ".." escapes the root; "." and dot-names are reserved for temp files.
        if part.startswith("."):
            raise InvalidKey(f"storage key component may not start with '.': {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A name prefix inside a container or bucket, without its slashes; refused by the same
    safety rules as a key (no "..", no dot names)."""
    prefix = prefix.strip("/")
    if prefix:
        validate_key(prefix)
    return prefix


class KeyLocks:
    """One lock per object name, held while a put of that name runs in this process.

    Object stores that check ``If-None-Match: *`` only when a PUT starts (Swift, its s3api)
    would otherwise let two overlapping PUTs of one key from this process both succeed.
    Entries live only while someone holds or waits for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, list] = {}  # name -> [Lock, users]

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        with self._lock:
            entry = self._locks.setdefault(name, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[name]


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it could start a valid key ("" lists everything)."""
    if prefix == "":
        return prefix
    # a prefix may end in "/" or in the middle of a component; check it as a key would be.
    probe = prefix + "x" if prefix.endswith("/") else prefix
    validate_key(probe)
    return prefix


class Storage(ABC):
    """A write-once object store.  The docstrings of this class are the contract.

    Guarantees every implementation must give:

    * **Write-once, atomic.**  :meth:`put` either makes the complete object visible under its
      key or leaves nothing visible at all (no partial object, even if the process is killed
      or the disk fills up).  An existing key is never overwritten: ``put`` raises
      :class:`ObjectExists` instead.  Once ``put`` returns, the object is durable (fsync or
      the service's equivalent).
    * **Streaming.**  Data enters as an iterable of byte chunks and leaves as an iterator of
      byte chunks; no method needs a whole object in memory.
    * **Errors.**  Only :class:`StorageError` and its subclasses escape (plus ``InvalidKey``
      for bad keys, itself a ``StorageError``).  ``ENOSPC`` or a quota error becomes
      :class:`StorageFull`, and the partially written temporary data is removed.
    * **Thread safety.**  Methods may be called from several threads at once.
    """

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_url(cls, url: str, **options: Any) -> Storage:
        """Build an instance from a URL of this storage's scheme (see ``registry.get_storage``)."""

    @property
    @abstractmethod
    def url(self) -> str:
        """The URL that :func:`freezer_ui.storage.get_storage` turns back into this storage."""

    @abstractmethod
    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the concatenation of ``chunks`` under ``key``; return its size in bytes.

        Atomic and write-once (see the class docstring): raises :class:`ObjectExists` if the
        key exists, :class:`StorageFull` when out of space.  If iterating ``chunks`` raises,
        nothing is stored and the exception propagates unchanged.
        """

    @abstractmethod
    def get(self, key: str) -> Iterator[bytes]:
        """Stream the object's bytes in chunks.  Raises :class:`ObjectNotFound`.

        The existence check happens when this method is called, not at the first ``next``.
        """

    @abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes starting at ``offset``.

        Shorter only when the object ends before ``offset + length`` (empty if ``offset`` is
        past the end).  Raises :class:`ObjectNotFound`; negative arguments raise ``ValueError``.
        """

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every stored object whose key starts with ``prefix`` (string prefix).

        Order is unspecified.  Objects still being written by ``put`` are never listed.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object.  Raises :class:`ObjectNotFound` if it does not exist."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    def remove_leftovers(self, older_than: float = 3600.0) -> int:
        """Delete debris of interrupted ``put`` calls (temp files, unfinished multipart
        uploads) older than ``older_than`` seconds; return how many were removed.

        Interrupted puts never become visible objects, but a killed process may leave their
        temporary data behind.  The repository calls this from prune, under its exclusive
        lock.  The default does nothing (storages without such debris).
        """
        return 0

    def get_bytes(self, key: str) -> bytes:
        """Convenience: the whole object as bytes (only for small objects)."""
        return b"".join(self.get(key))

    def close(self) -> None:  # noqa: B027 - optional hook, most storages hold nothing
        """Release connections.  The default does nothing."""
