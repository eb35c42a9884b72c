"""Job actions on backups written by the upstream Freezer agent (``freezer_ui_format:
"freezer-legacy"``), run by our agent with the legacy readers of ``freezer_ui.engines.legacy``.

``restore`` — the action the restore wizard's :class:`~freezer_ui.api.legacy_source.LegacySource`
writes, the agent core dispatches ``{"action": "restore", "freezer_ui_format": "freezer-legacy"}``
here::

    {"action": "restore", "freezer_ui_format": "freezer-legacy",
     "container": "/srv/freezer",            # upstream's --container (local storage)
     "backup_name": "fs", "hostname": "web1", "engine_name": "tar" | "rsync" (optional),
     "restore_abs_path": "/srv/restore/x",    # must not exist or be empty
     "restore_from_date": "2024-05-01T12:00:00",   # UTC; absent = latest
     "legacy_timestamp": 1714564800,          # optional: the generation the user picked
     "paths": ["etc/nginx"],                  # optional: sub-paths
     "passphrase_ref": "..."}                 # the key of an encrypted backup (Keys panel)

An encrypted backup is decrypted with exactly the key ``passphrase_ref`` names — never the
agent's shared passphrase or another fallback: no key named → refused, a key that does not
resolve → refused by the agent core, a wrong key → refused; each before anything is written.

``import_`` — ``{"action": "admin", "legacy_import": true, "container", "backup_name",
"hostname", "engine_name"?, "repository": <our repository URL or local path>,
"passphrase_ref"? (ours), "legacy_passphrase_ref"?}`` (an admin action: freezer-api's action
enum has no room for a new name): converts the chain into generations of ours (importer.py),
each labelled with the agent's project and given a backup record of ours, so it shows in the
Backups panel and browses like any other.

Both check every host path against the agent's allowed roots (``checked_path``) before reading
anything, and turn the readers' clean refusals (no such backup, unsupported, target not empty,
passphrase missing or wrong) into a refused action: retrying cannot help them.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from freezer_ui.agent.actions import ActionContext, checked_path, open_repository, record_base
from freezer_ui.engines import legacy

FORMAT = "freezer-legacy"

# Upstream records name the engine as its agent's --engine; the container's directory is the
# engine's ``name`` property, which for rsyncv2 is "rsync".
_ENGINE_DIRS = {"tar": "tar", "rsync": "rsync", "rsyncv2": "rsync"}

_REFUSALS = (
    legacy.NoBackupFound,  # includes PathNotFound
    legacy.UnsupportedBackup,
    legacy.TargetExists,
    legacy.PassphraseRequired,
    legacy.WrongPassphrase,
)


def _refused(message: str) -> Exception:
    from freezer_ui.agent.agent import Refused

    return Refused(message)


def _container(ctx: ActionContext) -> str:
    a = ctx.action
    storage = str(a.get("storage") or "local")
    if storage != "local":
        raise _refused(
            f"upstream Freezer backups are read from local (or locally mounted) containers "
            f"only, not storage {storage!r}"
        )
    container = str(a.get("container") or "").strip()
    if not container:
        raise _refused("the action has no container (the upstream Freezer container path)")
    return checked_path(ctx, "container", container)


def _find(ctx: ActionContext, container: str) -> legacy.LegacyBackup:
    a = ctx.action
    name = str(a.get("backup_name") or "")
    host = str(a.get("hostname") or ctx.agent.hostname)
    if not name:
        raise _refused("the action has no backup_name")
    engine_name = str(a.get("engine_name") or a.get("engine") or "")
    engine = _ENGINE_DIRS.get(engine_name) if engine_name else None
    if engine_name and engine is None:
        raise _refused(f"upstream Freezer engine {engine_name!r} cannot be restored here")
    try:
        # "<host>_<name>" is the exact directory name the upstream agent wrote.
        return legacy.find_backup(legacy.discover(container), f"{host}_{name}", engine)
    except legacy.NoBackupFound as e:
        raise _refused(str(e)) from None


def restore(ctx: ActionContext) -> dict[str, Any]:
    from freezer_ui.agent.agent import _RunProgress

    a = ctx.action
    target = str(a.get("restore_abs_path") or "")
    if not target:
        raise _refused("a restore action needs restore_abs_path")
    checked_path(ctx, "restore_abs_path", target)
    container = _container(ctx)
    backup = _find(ctx, container)
    at = a.get("restore_from_date") or None
    paths = a.get("paths") or None
    if paths is not None and (
        not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)
    ):
        raise _refused("paths must be a list of relative paths")
    pinned = a.get("legacy_timestamp")
    if pinned not in (None, ""):
        # The generation the user saw and confirmed: refuse rather than restore another one
        # (e.g. its metadata vanished and the date now resolves to an older level).
        try:
            pinned = int(pinned)
            chosen = backup.choose(at if at is not None else pinned)
        except (ValueError, TypeError, legacy.NoBackupFound):
            chosen = []
        if not chosen or chosen[-1].timestamp != pinned:
            raise _refused(f"generation {pinned} of {backup.engine}/{backup.key} no longer exists")
        at = at if at is not None else pinned
    ctx.log(
        f"restore upstream Freezer backup {backup.engine}/{backup.key} from {container} "
        f"as of {at or 'latest'} into {target}" + (f" (paths: {', '.join(paths)})" if paths else "")
    )
    # ctx.passphrase may come from the agent's shared passphrase when the action names no key:
    # an upstream backup was encrypted with its own passphrase, so only the named key counts.
    ref = a.get("passphrase_ref")
    passphrase = ctx.passphrase if ref else None
    began = time.monotonic()
    try:
        res = legacy.restore(
            container,
            backup,
            target,
            at=at,
            passphrase=passphrase,
            progress=_RunProgress(ctx.control),
            warn=lambda m: ctx.log(f"warning: {m}"),
            paths=paths,
        )
    except legacy.PassphraseRequired:
        raise _refused(
            f"upstream Freezer backup {backup.engine}/{backup.key} is encrypted: the restore "
            "action must name its key (passphrase_ref, a passphrase key of the Keys panel)"
        ) from None
    except legacy.WrongPassphrase as e:
        raise _refused(f"key {ref!r} does not decrypt this backup: {e}") from None
    except _REFUSALS as e:
        raise _refused(str(e)) from None
    except ValueError as e:  # a bad date or path in the action
        raise _refused(str(e)) from None
    duration = round(time.monotonic() - began, 3)
    s = res.stats
    levels = [
        {"level": g.level, "timestamp": g.timestamp, "time": g.time.isoformat()}
        for g in res.generations
    ]
    ctx.log(
        f"restored {s.files} files ({s.bytes} bytes), {s.dirs} dirs, {s.symlinks} symlinks "
        f"from {len(levels)} levels in {duration} s"
    )
    return {
        "format": FORMAT,
        "backup": res.backup,
        "target": str(res.target),
        "files": s.files,
        "bytes": s.bytes,
        "dirs": s.dirs,
        "symlinks": s.symlinks,
        "removed": s.removed,
        "renamed": s.renamed,
        "skipped": s.skipped,
        "duration": duration,
        "generations": levels,
        "paths": res.paths,
        "warnings": res.warnings[:20],
    }


def import_(ctx: ActionContext) -> dict[str, Any]:
    """``admin`` + ``legacy_import``: the legacy chain into our repository ``repository``."""
    from freezer_ui.agent.secrets import SecretError, resolve_passphrase
    from freezer_ui.engines.legacy.importer import import_backup

    a = ctx.action
    container = _container(ctx)
    backup = _find(ctx, container)
    repository = str(a.get("repository") or "").strip()
    if not repository:
        raise _refused("a legacy_import action needs repository (where to import to)")
    legacy_pass = None
    if a.get("legacy_passphrase_ref"):
        try:
            legacy_pass = resolve_passphrase(
                {"passphrase_ref": a["legacy_passphrase_ref"]},
                ctx.agent.key_dir,
                project_id=ctx.agent.project_id or None,
            )
        except SecretError as e:
            raise _refused(str(e)) from None
    # Our repository is opened exactly as a backup action opens its own (allowed roots,
    # creation when missing, the action's passphrase_ref).
    repo_ctx = dataclasses.replace(
        ctx,
        action={**a, "storage": "local", "container": repository, "legacy_container": container},
    )
    repo = open_repository(repo_ctx, create=True)
    ctx.log(f"import {backup.engine}/{backup.key} from {container} into {repo.storage.url}")
    began = time.monotonic()
    try:
        res = import_backup(
            container,
            backup,
            repo,
            passphrase=legacy_pass,
            log=ctx.log,
            labels={"project_id": str(ctx.agent.project_id)},
        )
    except _REFUSALS as e:
        raise _refused(str(e)) from None
    for item in res.new:
        _report_record(ctx, repo_ctx.action, repo, item)
    return {
        "format": FORMAT,
        "backup": res.backup,
        "repository": repo.storage.url,
        "imported": [i.generation_id for i in res.new],
        "already_imported": len(res.skipped),
        "duration": round(time.monotonic() - began, 3),
        "notes": res.notes[:20],
    }


def _report_record(ctx: ActionContext, action: dict[str, Any], repo: Any, item: Any) -> None:
    """A backup record of ours for one imported generation: the series is the legacy one
    (its host and name), stored where the import wrote it, at the legacy time."""
    g = item.legacy
    record = record_base(ctx.agent, ctx.job, action, g.timestamp, ctx.current["run_id"])
    record.update(
        {
            "hostname": g.hostname,
            "backup_name": g.backup_name,
            "engine_name": "tar",
            "path_to_backup": None,
            "generation_id": item.generation_id,
            "repository": repo.storage.url,
            "size": item.bytes,
            "backup_size_uncompressed": item.bytes,
            "new_bytes": item.bytes_new,
            "files": item.files,
            # Keys distinct from the record's own: freezer-api's structured search matches a
            # key anywhere in the document, the last occurrence winning.
            "imported_from": {
                "format": FORMAT,
                "legacy_container": action.get("legacy_container"),
                "legacy_engine": g.engine,
                "legacy_backup": g.key,
                "legacy_level": g.level,
                "legacy_timestamp": g.timestamp,
            },
        }
    )
    ctx.agent.store.report(
        {"op": "backup", "backup_id": None, "status": "available", "metadata": record}
    )
