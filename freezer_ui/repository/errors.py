"""Errors raised by the repository layer.  Every one is a :class:`RepositoryError`."""

from __future__ import annotations


class RepositoryError(Exception):
    """Base class: the repository cannot do what was asked."""


class RepositoryNotFound(RepositoryError):
    """The storage holds no repository (no ``config`` object)."""


class RepositoryExists(RepositoryError):
    """``Repository.init`` was called on a storage that already holds one."""


class UnsupportedFormat(RepositoryError):
    """The repository (or one object in it) uses a format version this code cannot read."""


class WrongPassphrase(RepositoryError):
    """No key file in the repository opens with the given passphrase (or none was given)."""


class CorruptData(RepositoryError):
    """Stored bytes fail a check (checksum, authentication tag, structure or chunk id).

    ``key`` names the storage object and ``offset`` the byte position in it, when known.
    """

    def __init__(self, message: str, *, key: str | None = None, offset: int | None = None):
        where = ""
        if key is not None:
            where = f" [{key}" + (f" @ {offset}" if offset is not None else "") + "]"
        super().__init__(message + where)
        self.key = key
        self.offset = offset


class MissingChunk(RepositoryError):
    """A chunk id is not in the index (never stored, or removed by prune)."""


class LockError(RepositoryError):
    """A lock could not be taken (another process holds a conflicting one)."""


class GenerationNotFound(RepositoryError):
    """No generation with that id."""
