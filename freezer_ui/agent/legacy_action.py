"""Job actions on backups written by the upstream Freezer agent (``freezer_ui_format:
"freezer-legacy"``), run by our agent with the legacy readers of ``freezer_ui.engines.legacy``.

``restore`` — the action the restore wizard's :class:`~freezer_ui.api.legacy_source.LegacySource`
writes, the agent core dispatches ``{"action": "restore", "freezer_ui_format": "freezer-legacy"}``
here::

    {"action": "restore", "freezer_ui_format": "freezer-legacy",
     "storage": "local" | "ssh" | "swift",    # as the upstream agent's record says
     "container": "/srv/freezer",            # upstream's --container: a host path (local), or
                                             # a relative name (ssh, swift; see _remote_url)
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

Both check every host path against the agent's allowed roots (``checked_path``), and a remote
container's name and storage against the operator's options (``_opened``), before reading
anything, and turn the readers' clean refusals (no such backup, unsupported, target not empty,
passphrase missing or wrong) into a refused action: retrying cannot help them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from freezer_ui.agent.actions import (
    ActionContext,
    checked_path,
    open_repository,
    record_base,
    remote_container_name,
    repository_url,
)
from freezer_ui.engines import legacy

FORMAT = "freezer-legacy"

# Upstream records name the engine as its agent's --engine; the container's directory is the
# engine's ``name`` property, which for rsyncv2 is "rsync".
_ENGINE_DIRS = {"tar": "tar", "rsync": "rsync", "rsyncv2": "rsync"}

# Storages a record's container may be on besides local, each read through RemoteContainer.
_REMOTE = ("ssh", "swift")

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


def _local_container(ctx: ActionContext) -> str:
    container = str(ctx.action.get("container") or "").strip()
    if not container:
        raise _refused("the action has no container (the upstream Freezer container path)")
    if "://" in container:
        raise _refused(
            f"container {container!r}: a local container is a host path; other storages are "
            "chosen with the storage field"
        )
    return checked_path(ctx, "container", container)


def _container_name(storage: str, container: str) -> str:
    # the same rule as for our repositories on remote storages (why: see there)
    return remote_container_name(storage, container)


def _remote_url(ctx: ActionContext, storage: str, container: str) -> tuple[str, Any]:
    """(storage URL, keystoneauth session or None) of a remote record's container, by the
    agent's rules (docs/agent.md "Backups of the upstream Freezer agent")."""
    cfg = ctx.agent.config
    if storage in cfg.legacy_storages:
        return _own_swift(ctx, container)
    if storage not in dict(cfg.remote_storages):
        enabled = sorted({*dict(cfg.remote_storages), *cfg.legacy_storages})
        raise _refused(
            f"upstream Freezer backups on {storage} storage cannot be read by this agent: the "
            f"operator enables a remote storage with --remote-storage {storage}=URL (containers "
            f"copied under URL/<project id>/) or --legacy-storage swift (the project's own Swift "
            f"account); enabled here: {', '.join(enabled) or 'none'}, besides local (or locally "
            "mounted) containers"
        )
    # Exactly where a repository of ours with that container would be: the operator's base,
    # then the project. The project is the agent's (the config's is empty on a single-project
    # agent started from the CLI).
    config = dataclasses.replace(cfg, project_id=ctx.agent.project_id)
    return repository_url({"storage": storage, "container": container}, config), None


def _own_swift(ctx: ActionContext, container: str) -> tuple[str, Any]:
    """``--legacy-storage swift``: the container is in the Swift account of the agent's own
    project, reached with the agent's Keystone credentials (``OS_*``), which must be that
    project's: checked against the token's scope and the catalog's endpoint, not assumed."""
    if not ctx.agent.config.shared_passphrase:
        # project_config turns shared_passphrase off for each project of a multi-project
        # agent: its environment belongs to no single tenant, so its credentials must not
        # serve a tenant's records either.
        raise _refused(
            "--legacy-storage swift needs an agent serving one project with that project's "
            "own Keystone credentials; this agent serves several projects"
        )
    from freezer_ui.storage.swift import settings_from_env

    env = settings_from_env()
    if env.get("auth_version") == "1" or not (
        env.get("auth_url") and env.get("username") and env.get("password")
    ):
        raise _refused(
            "--legacy-storage swift reads the project's Swift account with Keystone v3 "
            "credentials (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME or "
            "OS_PROJECT_ID): none in the agent's environment"
        )
    from keystoneauth1 import exceptions as ks_exceptions
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(
        auth_url=env["auth_url"],
        username=env["username"],
        password=env["password"],
        project_name=env.get("project_name"),
        project_id=env.get("project_id"),
        user_domain_id=env.get("user_domain_id"),
        project_domain_id=env.get("project_domain_id"),
        user_domain_name=env.get("user_domain_name")
        or (None if env.get("user_domain_id") else "Default"),
        project_domain_name=env.get("project_domain_name")
        or (None if env.get("project_domain_id") else "Default"),
    )
    session = ks_session.Session(auth=auth, verify=env.get("cacert") or True, timeout=60)
    try:
        scoped = session.get_project_id()
        endpoint = session.get_endpoint(
            service_type="object-store",
            interface=env.get("interface") or "public",
            region_name=env.get("region_name"),
        )
    except ks_exceptions.ClientException as e:
        # Keystone down or the credentials wrong: the operator's to fix, a retry may help.
        raise legacy.LegacyError(
            f"cannot authenticate to Keystone {env['auth_url']} as {env['username']}: {e}"
        ) from None
    project = str(ctx.agent.project_id)
    if scoped != project:
        raise _refused(
            f"--legacy-storage swift: the agent's Keystone credentials are scoped to project "
            f"{scoped}, not to the project it serves ({project}); an agent reads a project's "
            "own Swift account only"
        )
    account = (endpoint or "").rstrip("/").rsplit("/", 1)[-1]
    if not account.endswith(project):
        raise _refused(
            f"--legacy-storage swift: the catalog's object-store endpoint {endpoint!r} is not "
            f"the account of project {project}"
        )
    name = container.split("/", 1)
    prefix = f"/{name[1]}" if len(name) > 1 else ""
    return f"swift://{name[0]}{prefix}", session


@dataclasses.dataclass
class _Source:
    """Where a record's container is read: a local directory, or a remote one through the
    spool of :class:`~freezer_ui.engines.legacy.remote.RemoteContainer`."""

    where: str  # for logs and records: a host path, or the storage URL without its query
    discover: Callable[[], list[legacy.LegacyBackup]]
    restore: Callable[..., Any]
    import_backup: Callable[..., Any]


@contextmanager
def _opened(ctx: ActionContext) -> Iterator[_Source]:
    """The action's container, every check done before any connection; a remote one's spool
    (under the agent's state dir, never the shared $TMPDIR) is removed on the way out."""
    from freezer_ui.engines.legacy.importer import import_backup

    a = ctx.action
    storage = str(a.get("storage") or "local")
    if storage == "local":
        path = _local_container(ctx)
        yield _Source(
            path,
            lambda: legacy.discover(path),
            lambda backup, target, **kw: legacy.restore(path, backup, target, **kw),
            lambda backup, repo, **kw: import_backup(path, backup, repo, **kw),
        )
        return
    if storage not in _REMOTE:
        raise _refused(
            f"upstream Freezer backups are read from local (or locally mounted) containers "
            f"and from ssh or swift storage, not storage {storage!r}"
        )
    container = _container_name(storage, str(a.get("container") or "").strip())
    url, session = _remote_url(ctx, storage, container)
    from freezer_ui.engines.legacy.remote import RemoteContainer
    from freezer_ui.storage.base import StorageError
    from freezer_ui.storage.registry import UnknownStorage, get_storage

    where = url.split("?", 1)[0]
    try:
        if session is not None:
            from freezer_ui.storage.swift import SwiftStorage, settings_from_env

            env = settings_from_env()
            store = SwiftStorage.from_url(
                url,
                session=session,
                region_name=env.get("region_name"),
                interface=env.get("interface"),
                cacert=env.get("cacert"),
                create=False,
            )
        else:
            store = get_storage(url)
    except UnknownStorage as e:
        raise _refused(f"client {ctx.agent.client_id} does not support this storage: {e}") from None
    except StorageError as e:
        raise legacy.LegacyError(f"{where}: cannot open the container: {e}") from None
    spool = os.path.join(ctx.agent.config.state_dir, "legacy-spool")
    try:
        with RemoteContainer(store, spool) as rc:
            yield _Source(where, rc.discover, rc.restore, rc.import_backup)
    finally:
        store.close()


def _find(ctx: ActionContext, source: _Source) -> legacy.LegacyBackup:
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
        return legacy.find_backup(source.discover(), f"{host}_{name}", engine)
    except legacy.NoBackupFound as e:
        raise _refused(str(e)) from None


def restore(ctx: ActionContext) -> dict[str, Any]:
    a = ctx.action
    target = str(a.get("restore_abs_path") or "")
    if not target:
        raise _refused("a restore action needs restore_abs_path")
    checked_path(ctx, "restore_abs_path", target)
    with _opened(ctx) as source:
        return _restore(ctx, source, target)


def _restore(ctx: ActionContext, source: _Source, target: str) -> dict[str, Any]:
    from freezer_ui.agent.agent import _RunProgress

    a = ctx.action
    backup = _find(ctx, source)
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
        f"restore upstream Freezer backup {backup.engine}/{backup.key} from {source.where} "
        f"as of {at or 'latest'} into {target}" + (f" (paths: {', '.join(paths)})" if paths else "")
    )
    # ctx.passphrase may come from the agent's shared passphrase when the action names no key:
    # an upstream backup was encrypted with its own passphrase, so only the named key counts.
    ref = a.get("passphrase_ref")
    passphrase = ctx.passphrase if ref else None
    began = time.monotonic()
    try:
        res = source.restore(
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

    a = ctx.action
    repository = str(a.get("repository") or "").strip()
    if not repository:
        raise _refused("a legacy_import action needs repository (where to import to)")
    with _opened(ctx) as source:
        return _import(ctx, source, repository)


def _import(ctx: ActionContext, source: _Source, repository: str) -> dict[str, Any]:
    from freezer_ui.agent.secrets import SecretError, resolve_passphrase

    a = ctx.action
    backup = _find(ctx, source)
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
        action={**a, "storage": "local", "container": repository, "legacy_container": source.where},
    )
    repo = open_repository(repo_ctx, create=True)
    ctx.log(f"import {backup.engine}/{backup.key} from {source.where} into {repo.storage.url}")
    began = time.monotonic()
    try:
        res = source.import_backup(
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
