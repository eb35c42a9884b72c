"""Errors raised by the legacy (upstream Freezer) readers.

Every error that concerns one stored object names it (``.path``), so an operator can tell which
file of a container is damaged without reading a traceback.
"""

from __future__ import annotations


class LegacyError(Exception):
    """Base class: anything that makes a legacy listing or restore fail cleanly."""


class NoBackupFound(LegacyError):
    """No backup (or no generation at or before the requested date) matches."""


class PathNotFound(NoBackupFound):
    """A path asked for in a sub-path restore is not in the backup at that date."""


class UnsupportedBackup(LegacyError):
    """A backup this reader cannot restore yet (rsync engines, unknown compression...)."""


class TargetExists(LegacyError):
    """The restore target exists and is not an empty directory."""


class PassphraseRequired(LegacyError):
    """The chosen generations are encrypted and no passphrase file was given."""


class ObjectError(LegacyError):
    """An error about one stored file; the message always names it."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}")


class WrongPassphrase(ObjectError):
    """The passphrase does not decrypt the data (detected before anything is written)."""


class CorruptArchive(ObjectError):
    """The data is not a valid (compressed, encrypted) GNU tar archive."""


class TruncatedArchive(CorruptArchive):
    """The data ends before the archive does."""
