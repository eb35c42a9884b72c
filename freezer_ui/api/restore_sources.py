"""Restore sources: what the restore wizard can restore from, one plugin per backup format.

A *restore source* knows one kind of backup record: how to list the generations a restore can
start from, how a point in time resolves to exactly one of them, and which ``freezer_action``
restores a generation.  The wizard (``dashboards/project/freezer_restore``) only talks to this
contract, so a new format (upstream Freezer backups, another tool's) plugs in without touching
the wizard.

Registration, in one place you can read (docs/restore.md):

* :data:`BUILTIN_SOURCES`: dotted paths of the sources shipped with freezer-ui, in the order
  they are asked whether they handle a backup.  A built-in that fails to import (its optional
  dependencies are missing, or it is not written yet) is logged once and left out; the others
  still work.
* the entry-point group ``freezer_ui.restore_sources`` for third parties
  (``name = "package.module:Class"``).

Unknown names and duplicate names fail loudly (:class:`UnknownRestoreSource`,
:class:`DuplicateRestoreSource`).
"""

from __future__ import annotations

import datetime
import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.exceptions import FreezerAPIError, NotFound

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "freezer_ui.restore_sources"

# Built-in sources, most specific first (the first whose handles() is true wins).
BUILTIN_SOURCES: tuple[str, ...] = (
    "freezer_ui.api.restore_sources:FreezerUISource",
    "freezer_ui.api.legacy_source:LegacySource",
)

OVERWRITE_POLICIES = ("never", "if-newer", "always")


class RestoreSourceError(FreezerAPIError):
    """A restore cannot be prepared as asked; ``field`` names the wizard input at fault.

    Fields: ``backup_id``, ``generation``, ``point_in_time``, ``paths``, ``target``,
    ``overwrite`` (or ``""`` for the request as a whole).
    """

    status_code = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownRestoreSource(LookupError):
    pass


class DuplicateRestoreSource(LookupError):
    pass


@dataclass(frozen=True)
class Generation:
    """One restorable state of a backup, as step 1 of the wizard shows it.

    ``id`` is what the source's ``restore_action`` names the generation by (for our format the
    repository's generation id); ``backup_id`` is the backup record it comes from, which the
    browse endpoint takes to list its files.
    """

    id: str
    backup_id: str
    time: datetime.datetime  # aware, UTC
    kind: str  # human: "full", "incremental", ...
    level: int | None = None
    size: int | None = None
    files: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


class RestoreSource(ABC):
    """The contract of a restore source plugin.

    Every method takes the Horizon ``request`` first and reaches the backup service only
    through :mod:`freezer_ui.api.freezer`, so it sees exactly the caller's project: a source
    never returns another project's generations.
    """

    #: Registry name (also what entry points are named by).
    name: ClassVar[str]
    #: Human name of the format, shown in the wizard.
    label: ClassVar[str]
    #: Whether a restore of part of a generation (selected paths) is possible.
    can_pick_paths: ClassVar[bool] = False
    #: Whether :mod:`freezer_ui.api.browse` lists its generations (the wizard's tree picker);
    #: a source that can pick paths but is not browsable gets a list of typed paths instead.
    browsable: ClassVar[bool] = False

    # How far series_records pages through the project's backup records.
    page_size = 100
    max_records = 5000

    def series_records(self, request: Any, backup: Any) -> list[Any]:
        """The project's backup records with ``backup``'s name, host and container (paged)."""
        search = {
            "match": [
                {"backup_name": backup.backup_name},
                {"hostname": backup.hostname},
                {"container": backup.container},
            ]
        }
        records: list[Any] = []
        offset = 0
        while offset < self.max_records:
            page, more = api_freezer.backup_list(
                request, limit=self.page_size, offset=offset, search=search
            )
            records.extend(page)
            offset += len(page)
            if not more or not page:
                break
        return records

    @abstractmethod
    def handles(self, backup: Any) -> bool:
        """Whether this source can restore ``backup`` (a :class:`~freezer_ui.api.resources.
        Backup`).  Cheap: looks at the record only, never at storage."""

    @abstractmethod
    def generations(self, request: Any, backup: Any) -> list[Generation]:
        """The generations of the backup series ``backup`` belongs to, newest first.

        Only generations that can be restored now (complete, not deleted) are listed.
        """

    def resolve(self, request: Any, backup: Any, at: datetime.datetime) -> Generation:
        """The one generation a restore "as of ``at``" uses: the newest at or before ``at``.

        Raises :class:`RestoreSourceError` (field ``point_in_time``) when ``at`` is before the
        first generation, naming the first one's time.  ``at`` must be aware.
        """
        if at.tzinfo is None:
            raise ValueError("resolve() needs an aware datetime")
        gens = self.generations(request, backup)
        if not gens:
            raise RestoreSourceError(
                "point_in_time", _("This backup has no restorable generation.")
            )
        for gen in gens:  # newest first
            if gen.time <= at:
                return gen
        first = gens[-1].time.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise RestoreSourceError(
            "point_in_time",
            _("This point in time is before the first generation of this backup (%(first)s).")
            % {"first": first},
        )

    def generation(self, request: Any, backup: Any, generation_id: str) -> Generation:
        """The generation ``generation_id`` of the series; field ``generation`` error if gone."""
        for gen in self.generations(request, backup):
            if gen.id == generation_id:
                return gen
        raise RestoreSourceError(
            "generation",
            _("This generation no longer exists (it was deleted or pruned); pick another one."),
        )

    @abstractmethod
    def restore_action(
        self,
        request: Any,
        backup: Any,
        generation: Generation,
        paths: Sequence[str],
        target: str,
        overwrite: str,
    ) -> dict[str, Any]:
        """The ``freezer_action`` that restores ``generation`` (only ``paths``, relative to
        the generation's root, when not empty) into ``target`` on the agent's host."""


class FreezerUISource(RestoreSource):
    """Backups written by freezer-ui's own agent into a freezer-ui repository.

    A record is one generation; the generations of a backup are the records of the same
    series (backup name, host, repository) in the caller's project.  Listing records rather
    than the repository's manifests keeps tenants apart: a repository may be shared, records
    are per project.
    """

    name = "freezer_ui"
    label = gettext_lazy("freezer-ui repository")
    can_pick_paths = True
    browsable = True

    def handles(self, backup: Any) -> bool:
        meta = backup.to_dict().get("backup_metadata") or {}
        if meta.get("freezer_ui_agent") is not True or meta.get("freezer_legacy"):
            return False
        return bool(backup.generation_id)

    @staticmethod
    def _series(backup: Any) -> tuple[str, str, str, str]:
        return (backup.backup_name, backup.hostname, backup.storage, backup.container)

    def generations(self, request: Any, backup: Any) -> list[Generation]:
        wanted = self._series(backup)
        records = self.series_records(request, backup)
        gens = {}
        for record in records:
            # The search is a prefilter; the series is decided on the exact fields here.
            if self._series(record) != wanted or not self.handles(record):
                continue
            if (record.status or "available") != "available" or not record.time_stamp:
                continue
            gen = Generation(
                id=record.generation_id,
                backup_id=record.id,
                time=datetime.datetime.fromtimestamp(record.time_stamp, tz=datetime.UTC),
                kind="full",  # every generation of ours is logically full (docs/format.md)
                level=record.level,
                size=record.size,
                files=record.files,
            )
            gens.setdefault(gen.id, gen)
        return sorted(gens.values(), key=lambda g: (g.time, g.backup_id), reverse=True)

    def restore_action(self, request, backup, generation, paths, target, overwrite):
        if overwrite not in OVERWRITE_POLICIES:
            raise RestoreSourceError(
                "overwrite", _("Unknown overwrite policy %(policy)r.") % {"policy": overwrite}
            )
        action = {
            "action": "restore",
            "mode": "fs",
            "engine_name": backup.engine_name or "tar",
            "backup_name": backup.backup_name,
            "hostname": backup.hostname,
            "storage": backup.storage or "local",
            "container": backup.container,
            "restore_abs_path": target,
            # The generation the user saw and confirmed, never a date the agent resolves again
            # (a backup finishing meanwhile would change what "as of" means).
            "generation_id": generation.id,
            "overwrite": overwrite,
        }
        if paths:
            action["paths"] = list(paths)
        return action


# ------------------------------------------------------------------------------- registry
_failed_imports: set[str] = set()


def _load(path: str) -> type[RestoreSource] | None:
    module_name, _sep, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        if path not in _failed_imports:
            _failed_imports.add(path)
            LOG.warning("restore source %s is not available: %s", path, exc)
        return None
    _check_class(cls, path)
    return cls


def _check_class(cls: Any, where: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, RestoreSource)):
        raise TypeError(f"{where} is not a RestoreSource subclass")


def source_classes() -> dict[str, type[RestoreSource]]:
    """Every available source, name -> class: the built-ins first, then the entry points."""
    table: dict[str, type[RestoreSource]] = {}
    for path in BUILTIN_SOURCES:
        cls = _load(path)
        if cls is None:
            continue
        if cls.name in table:
            raise DuplicateRestoreSource(f"restore source {cls.name!r} is registered twice")
        table[cls.name] = cls
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in table:
            raise DuplicateRestoreSource(
                f"restore source {ep.name!r} is registered twice ({ep.value})"
            )
        cls = ep.load()
        _check_class(cls, f"entry point {ep.name}={ep.value}")
        if cls.name != ep.name:
            raise TypeError(f"entry point {ep.name}={ep.value} names a source called {cls.name!r}")
        table[ep.name] = cls
    return table


def get_source(name: str) -> RestoreSource:
    """The source registered as ``name``; :class:`UnknownRestoreSource` otherwise."""
    table = source_classes()
    if name not in table:
        known = ", ".join(sorted(table))
        raise UnknownRestoreSource(f"unknown restore source {name!r} (known: {known})")
    return table[name]()


def source_for(backup: Any) -> RestoreSource:
    """The first registered source that handles ``backup``.

    Raises :class:`RestoreSourceError` (field ``backup_id``) when none does.
    """
    for cls in source_classes().values():
        source = cls()
        if source.handles(backup):
            return source
    raise RestoreSourceError(
        "backup_id", _("No restore source can restore this backup (unknown backup format).")
    )


def backup_for(request: Any, backup_id: str) -> tuple[Any, RestoreSource]:
    """The caller's backup ``backup_id`` and its source.

    Another project's ID is not found (the API answers NotFound for it), and the message says
    nothing about whether it exists elsewhere.
    """
    try:
        backup = api_freezer.backup_get(request, backup_id)
    except NotFound:
        raise RestoreSourceError(
            "backup_id", _("No such backup in this project (it may have been deleted).")
        ) from None
    if (backup.status or "available") != "available":
        raise RestoreSourceError(
            "backup_id",
            _("This backup is not available for restores (it failed or is running)."),
        )
    return backup, source_for(backup)
