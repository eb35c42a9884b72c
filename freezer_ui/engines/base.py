"""The engine contract: what every backup engine (tar, rsync, btrfs, zfs, 3par, ...) guarantees.

An engine turns a source (a directory tree, a block device, a snapshot) into one *generation* of a
:class:`~freezer_ui.repository.Repository` and back. Every generation is logically full: its
manifest lists every item with its chunk references, so any generation restores on its own, with
no chain of incrementals. Physically only chunks the repository does not know yet are stored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

OverwritePolicy = Literal["never", "if-newer", "always"]
OVERWRITE_POLICIES: tuple[str, ...] = ("never", "if-newer", "always")


class EngineError(Exception):
    """Base class of the errors an engine raises."""


class UnknownEngine(EngineError, LookupError):
    """No engine is registered under the requested name."""


class DuplicateEngine(EngineError):
    """Two engines (built in or from entry points) claim the same name."""


class SourceError(EngineError):
    """The backup source is missing or is not what the engine backs up."""


class TargetError(EngineError):
    """The restore target cannot be used (not a directory, not creatable...)."""


@dataclass
class BackupResult:
    """What a finished backup reports. ``warnings`` non-empty means "completed with warnings":
    the generation was committed, but the listed paths were skipped or may be inconsistent."""

    generation_id: str
    files: int = 0  # items of any type written to the manifest
    regular_files: int = 0
    bytes_total: int = 0  # logical size of the regular files in the generation
    bytes_read: int = 0  # bytes actually read from the source (cache misses)
    bytes_new: int = 0  # plaintext bytes of chunks the repository did not know before
    bytes_stored: int = 0  # what those new chunks take in the repository (compressed, sealed)
    chunks_new: int = 0
    files_from_cache: int = 0
    files_read: int = 0
    duration: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def previous_totals(repo: Any, backup_name: str, hostname: str) -> tuple[int, int | None] | None:
    """(logical bytes, items) of the newest generation of this backup in ``repo``, or None.

    The engines stream the tree without a counting pass, so they know no total; the previous
    generation of the same backup is a good estimate for percent and ETA."""
    try:
        gens = [
            g for g in repo.generations() if (g.backup_name, g.hostname) == (backup_name, hostname)
        ]
    except Exception:  # an estimate must never fail a backup
        return None
    if not gens:
        return None
    stats = max(gens, key=lambda g: g.time).stats
    size, items = stats.get("bytes_total"), stats.get("files")
    if not isinstance(size, int) or size <= 0:
        return None
    return size, items if isinstance(items, int) and items > 0 else None


@dataclass
class RestoreResult:
    """What a finished restore reports. ``skipped`` lists items not written because of the
    overwrite policy; ``rejected`` lists items refused because they would escape the target or
    are malformed; ``warnings`` lists metadata that could not be applied."""

    generation_id: str
    files: int = 0
    bytes_written: int = 0
    duration: float = 0.0
    skipped: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Engine(ABC):
    """A backup engine. Subclasses set :attr:`name` and implement :meth:`backup` and
    :meth:`restore`; they are registered in :mod:`freezer_ui.engines.registry`.

    Engines are stateless between calls except for local caches (the tar engine's files cache);
    an engine instance may be reused for several backups and restores.
    """

    name: ClassVar[str]

    @abstractmethod
    def backup(
        self,
        repo: Any,
        source: str,
        *,
        backup_name: str,
        hostname: str,
        excludes: Sequence[str] = (),
        one_file_system: bool = False,
        progress: Any | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> BackupResult:
        """Back up ``source`` into ``repo`` as one new generation and return its id and stats.

        Guarantees:
        - the generation is logically full and only becomes visible once committed; a crash or
          an exception leaves no generation behind;
        - unchanged data is not re-read when the engine has a way to know it is unchanged;
        - unreadable items and items that changed while being read do not abort the backup:
          they are listed in ``BackupResult.warnings`` (and in the generation stats).

        ``progress`` (a :class:`freezer_ui.progress.Progress`-like object with ``start``,
        ``advance`` and ``finish``) is fed with bytes and files as they are processed.

        Raises :class:`SourceError` if ``source`` cannot be backed up at all; repository and
        storage errors propagate unchanged.
        """

    @abstractmethod
    def restore(
        self,
        repo: Any,
        gen_id: str,
        target: str,
        *,
        paths: Sequence[str] | None = None,
        overwrite: OverwritePolicy = "never",
        progress: Any | None = None,
    ) -> RestoreResult:
        """Restore generation ``gen_id`` (or only the items at or under ``paths``) into
        ``target``, creating it if needed.

        Guarantees:
        - nothing is ever written outside ``target``, whatever the manifest says: items with
          absolute paths, ``..`` components or NUL bytes are rejected, and symlinks in the
          target's subtree are never followed;
        - every chunk is verified against its id before its data is written;
        - existing entries follow ``overwrite``: ``never`` keeps them, ``if-newer`` replaces
          them when the backed-up item is newer, ``always`` replaces them.

        Raises :class:`TargetError` if ``target`` cannot be used; ``CorruptData`` from the
        repository if a chunk fails verification.
        """
