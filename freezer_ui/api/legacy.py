"""Upstream Freezer backups in a local container, registered as backup records of a project.

In remote mode the upstream agent already wrote a freezer-api backup record per run. In
embedded mode nobody did: :func:`legacy_register` discovers what a container holds (the
readers of ``freezer_ui.engines.legacy``) and creates one record per legacy generation, in
freezer-api's shape (what the upstream agent writes) plus ``freezer_legacy: true``, so those
backups appear in the Backups panel and the restore wizard offers them
(:class:`freezer_ui.api.legacy_source.LegacySource`).

Only a container inside ``FREEZER_UI_ALLOWED_ROOTS`` is read (as written and once symlinks are
resolved). Registering is idempotent: a generation already recorded in the request's project
(same container, engine, host, name and timestamp) is not recorded again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from freezer_ui import conf
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.exceptions import ValidationError

PAGE = 100
MAX_RECORDS = 100_000  # a bound on what one container's existing records are read from


@dataclass
class Registered:
    created: list[str] = field(default_factory=list)  # new backup record ids
    existing: int = 0
    backups: list[str] = field(default_factory=list)  # "<engine>/<host>_<name>" found
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": list(self.created),
            "existing": self.existing,
            "backups": list(self.backups),
            "notes": list(self.notes),
        }


def _checked_container(container: str) -> str:
    roots = conf.allowed_roots()
    path = os.path.normpath(container) if isinstance(container, str) else ""
    if not (
        path and conf.path_allowed(path, roots) and conf.path_allowed(os.path.realpath(path), roots)
    ):
        raise ValidationError({"container": "must be an absolute path inside " + ", ".join(roots)})
    return path


def record_for(container: str, g: Any) -> dict[str, Any]:
    """The backup record of one legacy generation (freezer-api's fields, as the agent's)."""
    return {
        "action": "backup",
        "mode": "fs",
        "backup_name": g.backup_name,
        "hostname": g.hostname,
        "container": container,
        "storage": "local",
        "engine_name": g.engine,
        "curr_backup_level": g.level,
        "time_stamp": g.timestamp,
        "level_zero_timestamp": g.level_zero_timestamp,
        "compression": g.compression,
        "encrypted": g.encrypted,
        "backup_size_compressed": g.size,
        "freezer_legacy": True,
        "status": "available",
    }


def _identity(meta: dict[str, Any]) -> tuple[str, str, str, int]:
    try:
        ts = int(meta.get("time_stamp") or 0)
    except (TypeError, ValueError):
        ts = 0
    return (
        str(meta.get("engine_name") or ""),
        str(meta.get("hostname") or ""),
        str(meta.get("backup_name") or ""),
        ts,
    )


def _existing(request: Any, container: str) -> set[tuple[str, str, str, int]]:
    seen: set[tuple[str, str, str, int]] = set()
    offset = 0
    search = {"match": [{"container": container}]}
    while offset < MAX_RECORDS:
        page, more = api_freezer.backup_list(request, limit=PAGE, offset=offset, search=search)
        for record in page:
            meta = record.to_dict().get("backup_metadata") or {}
            if meta.get("freezer_legacy") and meta.get("container") == container:
                seen.add(_identity(meta))
        offset += len(page)
        if not more or not page:
            break
    return seen


def legacy_register(request: Any, container: str) -> Registered:
    """Create the missing backup records for every upstream backup in ``container``."""
    from freezer_ui.engines.legacy import LegacyError, discover

    path = _checked_container(container)
    try:
        backups = discover(path)
    except LegacyError as e:
        raise ValidationError({"container": str(e)}) from None
    out = Registered()
    existing = _existing(request, path)
    manager = api_freezer.freezerclient(request).backups
    for b in backups:
        out.backups.append(f"{b.engine}/{b.key}")
        out.notes.extend(f"{b.engine}/{b.key}: {n}" for n in b.notes)
        for g in b.generations:
            record = record_for(path, g)
            if _identity(record) in existing:
                out.existing += 1
                continue
            out.created.append(manager.create(record))
            existing.add(_identity(record))
    return out
