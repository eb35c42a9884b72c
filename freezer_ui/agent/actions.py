"""What each ``freezer_action`` does, with our engines and repository.

The options are freezer-api's / the upstream agent's where they exist, so a job written for
freezer-scheduler reads the same here:

* ``backup``: ``path_to_backup``, ``backup_name``, ``engine_name`` (default ``tar``),
  ``storage`` + ``container`` (the repository: for ``local`` the container is its path; for
  ``ssh``/``swift`` a relative name under the base URL the operator enabled, see
  :func:`repository_url`), ``exclude`` (glob, or a list),
  ``one_file_system``.  A missing repository is created (encrypted iff a passphrase resolves).
* ``restore``: ``backup_name``, ``restore_abs_path`` (target), ``restore_from_date`` (ISO: the
  newest generation at or before it) or ``generation_id``, ``hostname`` (whose backup; default
  this host), ``overwrite`` (true / ``never`` / ``if-newer`` / ``always``).
* ``admin``: ``remove_older_than`` (days, upstream) and/or ``keep_last`` / ``keep_daily`` /
  ``keep_weekly`` / ``keep_monthly``, then prune (``prune: false`` skips it).
* ``info``: lists the repository's generations into the run log.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from freezer_ui.agent import schedule as sched
from freezer_ui.api.exceptions import FreezerAPIError, Unavailable

if TYPE_CHECKING:
    from freezer_ui.agent.agent import Agent, RunControl, RunLog


@dataclass
class ActionContext:
    agent: Agent
    job: dict[str, Any]
    action: dict[str, Any]
    control: RunControl
    log: RunLog
    current: dict[str, Any]
    started: int
    # repr=False: a context printed in a traceback or a debug log must not show the secret.
    passphrase: str | None = field(repr=False)


def _refused(message: str) -> Exception:
    from freezer_ui.agent.agent import Refused

    return Refused(message)


def checked_path(ctx: ActionContext, key: str, value: str) -> str:
    """``value`` if it lies inside the agent's allowed roots, else a refusal naming ``key``.

    Both the path as written and its real path must be inside: normalising catches
    ``/srv/../etc``, ``realpath`` catches a symlink inside a root that points outside it.
    """
    from freezer_ui.conf import path_allowed

    roots = [os.path.normpath(r) for r in ctx.agent.config.allowed_roots]
    if not (path_allowed(value, roots) and path_allowed(os.path.realpath(value), roots)):
        raise _refused(
            f"{key} {value!r} is outside the allowed roots of client "
            f"{ctx.agent.client_id} ({', '.join(roots)})"
        )
    return value


# One component of a container name on a remote storage (see remote_container_name).
_NAME_PART = re.compile(r"[A-Za-z0-9_@+=,:~-][A-Za-z0-9_.@+=,:~-]*")


def remote_container_name(storage: str, container: str) -> str:
    """``container`` if it is a plain relative name, else a refusal — before any connection.

    The name ends up in a storage URL (``ssh://…/<project>/<name>?key=…``,
    ``swift://<base>/<project>/<name>``), and the storages unquote their URL's path: beyond
    ``..``, absolute names and URLs, a ``%2e%2e`` would climb out after unquoting (into
    another project's directory), and a ``?`` or ``#`` would replace the operator's key or
    known_hosts. So only a conservative set of characters passes."""
    parts = container.split("/")
    if not container or not all(_NAME_PART.fullmatch(p) for p in parts):
        raise _refused(
            f"container {container!r}: for {storage} storage, a relative name such as "
            "'web-backups' or 'team/db' (letters, digits, '_', '-', '.', '@', '+', '=', "
            "',', ':', '~', no '..' nor a leading '.' or '/'); the agent adds where it lives"
        )
    return container


def repository_url(action: dict[str, Any], config: Any = None) -> str:
    """The repository URL an action names.

    ``local``: the container is a host path (or ``local://`` URL), checked against the allowed
    roots by the caller.  Any other storage is used only when the operator enabled it with a
    base URL (``--remote-storage NAME=URL``): the job's container is then a relative name under
    ``URL/<project id>/``.  A job never names a remote URL itself, because the agent connects
    with the operator's keys and credentials: a tenant who could write ``ssh://...`` or
    ``swift://...`` into a job would reach whatever those credentials reach, another tenant's
    repositories included.
    """
    storage = str(action.get("storage") or "local")
    container = str(action.get("container") or "").strip()
    if not container:
        raise _refused("the action has no container (the repository location)")
    if storage == "local":
        if "://" in container and not container.startswith("local://"):
            raise _refused(
                f"container {container!r}: a local repository is a host path; other storages "
                "are chosen with the storage field"
            )
        return container
    bases = dict(getattr(config, "remote_storages", ()) or ())
    base = bases.get(storage)
    if base is None:
        enabled = ", ".join(sorted(bases)) or "none"
        raise _refused(
            f"storage {storage!r} is not enabled on this agent (enabled remote storages: "
            f"{enabled}; the operator enables one with --remote-storage {storage}=URL)"
        )
    remote_container_name(storage, container)
    head, _, query = base.partition("?")
    project = str(getattr(config, "project_id", "") or "")
    path = "/".join(p for p in (head.rstrip("/"), project, container) if p)
    return f"{path}?{query}" if query else path


def open_repository(ctx: ActionContext, *, create: bool) -> Any:
    from freezer_ui.repository import Repository, RepositoryExists, RepositoryNotFound
    from freezer_ui.storage.registry import UnknownStorage, get_storage

    # The project is the agent's: a single-project agent started from the CLI learns it from
    # its Keystone token, so its config's project_id is empty.
    config = dataclasses.replace(ctx.agent.config, project_id=ctx.agent.project_id)
    url = repository_url(ctx.action, config)
    if "://" not in url:  # a local repository is a host path like any other
        checked_path(ctx, "container", url)
    elif url.startswith("local://"):
        checked_path(ctx, "container", url[len("local://") :])
    try:
        storage = get_storage(url)
    except UnknownStorage as e:
        raise _refused(f"client {ctx.agent.client_id} does not support this storage: {e}") from None
    try:
        return Repository.open(storage, passphrase=ctx.passphrase)
    except RepositoryNotFound:
        if not create:
            raise
    ctx.log(f"creating repository {storage.url}")
    try:
        return Repository.init(storage, passphrase=ctx.passphrase)
    except RepositoryExists:
        # Another agent created it a moment ago.
        return Repository.open(storage, passphrase=ctx.passphrase)


LEGACY_FORMAT = "freezer-legacy"
LEGACY_MODULE = "freezer_ui.agent.legacy_action"


def _legacy(function: str) -> Callable[[ActionContext], dict[str, Any]]:
    """A handler of the legacy plugin, imported only when a job needs it (it pulls in the
    upstream Freezer readers; an agent without them still runs every other action)."""
    import importlib

    try:
        module = importlib.import_module(LEGACY_MODULE)
        return getattr(module, function)
    except (ImportError, AttributeError) as e:
        raise _refused(
            "this agent cannot handle backups of the upstream Freezer agent "
            f"(freezer_ui_format {LEGACY_FORMAT!r}): {LEGACY_MODULE}.{function} is not "
            f"available ({e})"
        ) from None


def handler_for(action: dict[str, Any]) -> Callable[[ActionContext], dict[str, Any]]:
    """Which function runs ``action``: ours, or the legacy plugin's for upstream backups."""
    name = str(action.get("action"))
    legacy = action.get("freezer_ui_format") == LEGACY_FORMAT
    if name == "restore" and legacy:
        return _legacy("restore")
    if name == "admin" and action.get("legacy_import"):
        # An import rewrites an upstream chain into one of our repositories: maintenance, so
        # an admin action (freezer-api's action enum has no room for a new name).
        return _legacy("import_")
    if legacy:
        raise _refused(f"action {name!r} does not apply to upstream Freezer backups")
    return {
        "backup": backup,
        "restore": restore,
        "admin": admin,
        "info": info,
        "exec": exec_,
    }[name]


def run(ctx: ActionContext) -> dict[str, Any]:
    summary = handler_for(ctx.action)(ctx)
    if ctx.action.get("freezer_ui_format") == LEGACY_FORMAT and ctx.action.get("action") == (
        "restore"
    ):
        # Upstream Freezer streams carry no content hashes: only decompression, decryption and
        # tar header checksums catch damage, which is not a verification of the data.
        summary.setdefault("verified", False)
    return summary


# --------------------------------------------------------------------------- backup
def record_base(
    agent: Agent, job: dict[str, Any], action: dict[str, Any], started: int, run_id: str
) -> dict[str, Any]:
    """A backup document in freezer-api's shape (what its agent writes), plus our fields."""
    record = {
        "backup_name": action.get("backup_name") or "(unnamed)",
        "hostname": agent.hostname,
        "client_id": agent.client_id,
        "job_id": job["job_id"],
        "container": action.get("container"),
        "storage": action.get("storage") or "local",
        "engine_name": str(action.get("engine_name") or action.get("engine") or "tar"),
        "mode": action.get("mode") or "fs",
        "path_to_backup": action.get("path_to_backup"),
        "time_stamp": started,
        "curr_backup_level": 0,  # every generation is logically full
        "level": 0,
        "freezer_ui_run_id": run_id,
        "freezer_ui_agent": True,
    }
    if action.get("passphrase_ref"):
        # The reference NAME only (never the secret): the dashboard resolves it to open an
        # encrypted repository when browsing or restoring this backup.
        record["passphrase_ref"] = str(action["passphrase_ref"])
    return record


def _record_base(ctx: ActionContext, engine_name: str) -> dict[str, Any]:
    base = record_base(ctx.agent, ctx.job, ctx.action, ctx.started, ctx.current["run_id"])
    base["engine_name"] = engine_name
    return base


def backup(ctx: ActionContext) -> dict[str, Any]:
    from freezer_ui.engines.base import UnknownEngine
    from freezer_ui.engines.registry import get_engine

    a = ctx.action
    engine_name = str(a.get("engine_name") or a.get("engine") or "tar")
    try:
        engine_cls = get_engine(engine_name)
    except UnknownEngine:
        raise _refused(
            f"client {ctx.agent.client_id} does not support engine {engine_name!r} "
            f"(supported: {', '.join(ctx.agent.engines())})"
        ) from None
    source = a.get("path_to_backup")
    name = a.get("backup_name")
    if not source or not name:
        raise _refused("a backup action needs path_to_backup and backup_name")
    checked_path(ctx, "path_to_backup", source)
    base = _record_base(ctx, engine_name)
    store = ctx.agent.store
    record_id = _create_record(ctx, base)

    def publish(snapshot: Any) -> None:
        # Live progress on the backup record being created too (freezer-api keeps
        # backup_metadata as free JSON): in remote mode it is the only place the dashboard
        # sees it.  The run record gets it from the run's own publisher.
        progress = snapshot.to_dict()
        if record_id:
            try:
                store.update_backup(record_id, {"backup_metadata": {"progress": progress}})
            except FreezerAPIError:
                pass  # progress is best effort; the final record is spooled if need be

    ctx.control.on_snapshot = publish
    from freezer_ui.agent.agent import Cancelled, _RunProgress

    progress = _RunProgress(ctx.control)
    try:
        repo = open_repository(ctx, create=True)
        ctx.log(f"backup {source} -> {repo.storage.url} as {name!r} ({engine_name})")
        # The local copy of the chunk index next to the files cache (index_cache.py): the
        # backup opens the index in milliseconds instead of parsing every index object.
        from freezer_ui.engines.filescache import default_cache_root

        repo.use_index_cache(default_cache_root())
        from freezer_ui.engines.base import previous_totals

        estimate = previous_totals(repo, name, ctx.agent.hostname)
        if estimate is not None:
            # (the first run shows bytes and rate only)
            progress.set_total(total_bytes=estimate[0], total_files=estimate[1])
        excludes = a.get("exclude") or a.get("excludes") or ()
        if isinstance(excludes, str):
            excludes = [excludes]
        result = engine_cls().backup(
            repo,
            source,
            backup_name=name,
            hostname=ctx.agent.hostname,
            excludes=list(excludes),
            one_file_system=bool(a.get("one_file_system")),
            progress=progress,
            # Which project owns the generation, in the repository itself: browsing and
            # restoring check it, whatever a backup record claims.
            labels={"project_id": ctx.agent.project_id},
        )
        repo.save_index_cache()  # its own failures are warnings inside, never the backup's
    except Cancelled:
        ctx.control.on_snapshot = None
        # Nothing was committed: the record of a backup that does not exist goes away.
        if record_id:
            store.report({"op": "delete_backup", "backup_id": record_id})
        raise
    except Exception as e:
        ctx.control.on_snapshot = None
        ctx.log(f"backup failed: {type(e).__name__}: {e}")
        store.report(
            {
                "op": "backup",
                "backup_id": record_id,
                "status": "error",
                "metadata": {
                    **base,
                    "error": f"{type(e).__name__}: {e}",
                    "log": ctx.log.lines[-50:],
                },
            }
        )
        raise
    ctx.control.on_snapshot = None
    stats: dict[str, Any] = {}
    try:
        stats = dict(repo.open_generation(result.generation_id).info.stats or {})
    except Exception:  # noqa: BLE001 - the stats are informative only
        pass
    stored = stats.get("stored_bytes")
    total = result.bytes_total
    metadata = {
        **base,
        "generation_id": result.generation_id,
        "repository": repo.storage.url,
        "size": total,
        "backup_size_uncompressed": total,
        "stored_bytes": stored,
        "backup_size_compressed": stored,
        "new_bytes": result.bytes_new,
        "bytes_read": result.bytes_read,
        "files": result.files,
        "files_from_cache": result.files_from_cache,
        # Share of the logical bytes the repository already held (0 = all new, 1 = all known).
        "dedup_ratio": round(1 - result.bytes_new / total, 4) if total else None,
        "duration": round(result.duration, 3),
        "warnings_count": len(result.warnings),
        "warnings": result.warnings[:20],
        "progress": progress.snapshot().to_dict(),
        "log": ctx.log.lines[-50:],
        "time_ended": int(time.time()),
    }
    ctx.log(
        f"generation {result.generation_id}: {result.files} files, {total} bytes, "
        f"{result.bytes_new} new"
    )
    store.report(
        {"op": "backup", "backup_id": record_id, "status": "available", "metadata": metadata}
    )
    return {
        "generation_id": result.generation_id,
        "backup_id": record_id,
        "files": result.files,
        "bytes": total,
        "new_bytes": result.bytes_new,
    }


def _create_record(ctx: ActionContext, base: dict[str, Any]) -> str | None:
    try:
        record_id = ctx.agent.store.create_backup({**base, "status": "creating"})
    except Unavailable:
        return None  # the final record will be created (spooled) instead
    ctx.current.setdefault("backup_ids", []).append(record_id)
    ctx.agent.state.set_current(ctx.job["job_id"], ctx.current)
    return record_id


# --------------------------------------------------------------------------- restore
def _pick_generation(ctx: ActionContext, repo: Any) -> Any:
    a = ctx.action
    wanted = a.get("generation_id")
    gens = repo.generations()
    if wanted:
        for g in gens:
            if g.id == wanted:
                return g
        raise _refused(f"no generation {wanted} in the repository")
    name = a.get("backup_name")
    host = a.get("hostname") or ctx.agent.hostname
    candidates = [g for g in gens if g.backup_name == name and g.hostname == host]
    date = sched.parse_date(a.get("restore_from_date"))
    if date is not None:
        candidates = [g for g in candidates if g.time <= date]
    if not candidates:
        when = f" at or before {a.get('restore_from_date')}" if date else ""
        raise _refused(f"no generation of {name!r} from host {host}{when}")
    return candidates[-1]


def _overwrite(value: Any) -> str:
    if value in ("never", "if-newer", "always"):
        return str(value)
    return "always" if value is True or str(value).lower() in ("true", "1", "yes") else "never"


def _non_empty_dir(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is not None
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return True


def restore(ctx: ActionContext) -> dict[str, Any]:
    from freezer_ui.engines.registry import get_engine

    a = ctx.action
    target = a.get("restore_abs_path")
    if not target:
        raise _refused("a restore action needs restore_abs_path")
    checked_path(ctx, "restore_abs_path", target)
    paths = a.get("paths") or None
    if paths is not None and not (
        isinstance(paths, list) and all(isinstance(p, str) and p.strip() for p in paths)
    ):
        raise _refused("paths must be a list of non-empty relative paths")
    overwrite = _overwrite(a.get("overwrite"))
    if overwrite == "never" and _non_empty_dir(target):
        # Upstream Freezer refuses a non-empty target without --overwrite; so do we, before
        # anything is read or written, whatever the dashboard host checked (remote mode).
        raise _refused(
            f"restore_abs_path {target!r} exists and is not empty; choose another target "
            "or an overwrite policy (if-newer, always)"
        )
    from freezer_ui.agent.agent import _RunProgress

    repo = open_repository(ctx, create=False)
    gen = _pick_generation(ctx, repo)
    engine_name = str(a.get("engine_name") or gen.engine or "tar")
    engine = get_engine(engine_name)()
    ctx.log(f"restore generation {gen.id} ({gen.backup_name}) into {target}")
    began = time.monotonic()
    result = engine.restore(
        repo,
        gen.id,
        target,
        paths=paths,
        overwrite=overwrite,  # type: ignore[arg-type]
        progress=_RunProgress(ctx.control),
    )
    duration = round(result.duration or time.monotonic() - began, 3)
    ctx.log(
        f"restored {result.files} items, {result.bytes_written} bytes in {duration} s; "
        "every chunk checked against its hash"
    )
    return {
        "generation_id": gen.id,
        "target": target,
        "paths": paths or [],
        "files": result.files,
        "bytes": result.bytes_written,
        "duration": duration,
        # Engines read chunks through Repository.read_chunk, which checks each one against
        # its id (hash) and raises CorruptData otherwise: a restore that ends has verified
        # every chunk it wrote.
        "verified": True,
        "skipped": len(result.skipped),
        "rejected": len(result.rejected),
        "warnings": result.warnings[:20],
    }


# --------------------------------------------------------------------------- admin / info
def admin(ctx: ActionContext) -> dict[str, Any]:
    from freezer_ui.repository import RetentionPolicy

    a = ctx.action
    rules: dict[str, Any] = {}
    for key in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"):
        if a.get(key) not in (None, ""):
            rules[key] = int(a[key])
    if a.get("remove_older_than") not in (None, ""):
        rules["older_than"] = timedelta(days=float(a["remove_older_than"]))
    if not rules:
        raise _refused("an admin action needs remove_older_than or keep_* rules")
    repo = open_repository(ctx, create=False)
    policy = RetentionPolicy(**rules)
    removed = repo.forget(
        policy, backup_name=a.get("backup_name") or None, hostname=a.get("hostname") or None
    )
    ctx.log(f"forgot {len(removed)} generations")
    out: dict[str, Any] = {"forgotten": removed}
    if a.get("prune", True):
        stats = repo.prune()
        ctx.log(f"prune: {stats}")
        out["pruned"] = str(stats)
    return out


def info(ctx: ActionContext) -> dict[str, Any]:
    repo = open_repository(ctx, create=False)
    gens = repo.generations()
    name = ctx.action.get("backup_name")
    if name:
        gens = [g for g in gens if g.backup_name == name]
    for g in gens:
        ctx.log(f"generation {g.id} {g.time.isoformat()} {g.hostname} {g.backup_name}")
    return {"generations": [g.id for g in gens]}


# --------------------------------------------------------------------------- exec
# Environment variables an exec'd command never sees: the agent's own credentials.
_EXEC_HIDDEN_ENV = ("FREEZER_UI_PASSPHRASE", "OS_TOKEN", "OS_PASSWORD")
_EXEC_LINE_MAX = 1000


def exec_(ctx: ActionContext) -> dict[str, Any]:
    """``exec`` (upstream Freezer's): run ``command`` on the agent host.

    Refused unless the operator started the agent with ``--allow-exec``: on a multi-tenant
    cloud a job's author is a tenant, and this would run the tenant's command as the agent.
    No shell (``shlex.split``: no pipes, globs or variables), a timeout (``timeout`` option,
    capped by ``--exec-timeout``), output into the run log, killed on abort.
    """
    import queue
    import shlex
    import signal
    import subprocess
    import threading

    config = ctx.agent.config
    if not config.allow_exec:
        raise _refused(
            f"client {ctx.agent.client_id} does not run exec actions: its agent was started "
            "without --allow-exec (tenant-supplied commands are off by default)"
        )
    command = ctx.action.get("command")
    if not isinstance(command, str) or not command.strip():
        raise _refused("an exec action needs command (a string)")
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise _refused(f"command cannot be split into arguments: {e}") from None
    timeout = float(config.exec_timeout)
    asked = ctx.action.get("timeout")
    if asked not in (None, ""):
        try:
            timeout = min(timeout, float(asked))
        except (TypeError, ValueError):
            raise _refused(f"timeout {asked!r} is not a number of seconds") from None
    env = {k: v for k, v in os.environ.items() if k not in _EXEC_HIDDEN_ENV}
    ctx.log(f"exec {argv!r} (timeout {timeout:g} s)")
    began = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: a kill reaches its children
        )
    except OSError as e:
        raise _refused(f"cannot run {argv[0]!r}: {e.strerror or e}") from None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\n")[:_EXEC_LINE_MAX])
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    output = 0

    def drain() -> None:
        nonlocal output
        while True:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                output += 1
                ctx.log(f"| {line}")

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    try:
        while proc.poll() is None:
            drain()
            if time.monotonic() - began > timeout:
                kill()
                reader.join(timeout=5)
                drain()
                raise RuntimeError(f"command timed out after {timeout:g} s and was killed")
            ctx.control.tick()  # answers an abort event (raises Cancelled)
            time.sleep(0.05)
    except BaseException:
        if proc.poll() is None:
            kill()
        raise
    reader.join(timeout=5)
    drain()
    duration = round(time.monotonic() - began, 3)
    ctx.log(f"exit status {proc.returncode} after {duration} s")
    if proc.returncode != 0:
        raise RuntimeError(f"command exited with status {proc.returncode}")
    return {"command": argv, "exit_status": proc.returncode, "duration": duration,
            "output_lines": output}  # fmt: skip
