"""The restore wizard's source for backups written by the upstream Freezer agent.

Its records are freezer-api backup documents without ``freezer_ui_agent`` (the upstream agent
wrote them, remote mode) or with ``freezer_legacy: true`` (registered from a local container by
:func:`freezer_ui.api.legacy.legacy_register`, embedded mode). One record is one legacy
generation (a level of a chain); restoring it as of its time applies its chain, which the
agent's ``legacy_action`` does with the readers of ``freezer_ui.engines.legacy``.

A generation's ``id`` is its legacy timestamp (the ``<level>_<timestamp>`` directory name's
second half, unique within a backup): the action pins it (``legacy_timestamp``), so the agent
restores exactly the state the user confirmed or refuses.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from freezer_ui.api.restore_sources import Generation, RestoreSource, RestoreSourceError

FORMAT = "freezer-legacy"
# What the upstream agent's engines can be named in records; the readers restore these two.
ENGINES = {"tar": "tar", "rsync": "rsync", "rsyncv2": "rsync"}
# The storages the agent's legacy_action reads containers on (s3: no storage of ours yet).
STORAGES = ("local", "ssh", "swift")


def _encrypted(meta: dict[str, Any]) -> bool | None:
    """True/False as ``legacy_register`` records it (from the container's metadata); None for a
    record the upstream agent wrote itself: freezer 19.0.0's job reports no encryption flag
    (``freezer/job.py``), so the wizard offers a key without requiring one."""
    value = meta.get("encrypted")
    return None if value is None else bool(value)


class LegacySource(RestoreSource):
    name = "freezer_legacy"
    label = _("Upstream Freezer")
    can_pick_paths = True

    @staticmethod
    def _meta(backup: Any) -> dict[str, Any]:
        return backup.to_dict().get("backup_metadata") or {}

    def handles(self, backup: Any) -> bool:
        meta = self._meta(backup)
        if meta.get("freezer_legacy") is True:
            return True
        # Written by the upstream agent: none of our markers, and a time stamp to restore at.
        return (
            meta.get("freezer_ui_agent") is not True
            and not meta.get("generation_id")
            and bool(meta.get("time_stamp"))
        )

    @staticmethod
    def _series(backup: Any) -> tuple[str, str, str, str, str]:
        return (
            backup.backup_name,
            backup.hostname,
            backup.storage or "local",
            backup.container,
            ENGINES.get(backup.engine_name or "tar", backup.engine_name),
        )

    def generations(self, request: Any, backup: Any) -> list[Generation]:
        wanted = self._series(backup)
        records = self.series_records(request, backup)
        gens: dict[str, Generation] = {}
        for record in records:
            if self._series(record) != wanted or not self.handles(record):
                continue
            if (record.status or "available") != "available" or not record.time_stamp:
                continue
            level = record.level
            gen = Generation(
                id=str(record.time_stamp),
                backup_id=record.id,
                time=datetime.datetime.fromtimestamp(record.time_stamp, tz=datetime.UTC),
                kind=str(_("full")) if not level else str(_("incremental (level %d)") % level),
                level=level,
                size=record.stored_bytes if record.size is None else record.size,
                files=record.files,
                extra={"format": FORMAT, "encrypted": _encrypted(self._meta(record))},
            )
            gens.setdefault(gen.id, gen)
        return sorted(gens.values(), key=lambda g: (g.time, g.backup_id), reverse=True)

    def restore_action(self, request, backup, generation, paths, target, overwrite):
        if overwrite != "never":
            raise RestoreSourceError(
                "overwrite",
                str(_("Upstream Freezer backups restore into a new or empty directory only.")),
            )
        storage = backup.storage or "local"
        if storage not in STORAGES:
            raise RestoreSourceError(
                "backup_id",
                str(
                    _(
                        "This upstream Freezer backup is in %(storage)s storage; containers "
                        "are read from local (or locally mounted) directories, ssh and Swift "
                        "only."
                    )
                    % {"storage": storage}
                ),
            )
        engine = ENGINES.get(backup.engine_name or "tar")
        if engine is None:
            raise RestoreSourceError(
                "backup_id",
                str(
                    _("Upstream Freezer %(engine)s backups cannot be restored here.")
                    % {"engine": backup.engine_name}
                ),
            )
        action = {
            "action": "restore",
            "freezer_ui_format": FORMAT,
            "mode": "fs",
            "engine_name": engine,
            "backup_name": backup.backup_name,
            "hostname": backup.hostname,
            # Where the upstream agent wrote it, as its record says (freezer 19.0.0's job
            # copies its --storage and --container into every backup record). Which of those
            # the agent may read, and where exactly, is the agent's rule (legacy_action):
            # nothing here widens it.
            "storage": storage,
            "container": backup.container,
            "restore_abs_path": target,
            "restore_from_date": generation.time.astimezone(datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            # The generation the user confirmed: the agent refuses rather than restore another.
            "legacy_timestamp": int(generation.id),
        }
        if paths:
            action["paths"] = list(paths)
        return action
