"""Embedded transport: freezer-api's behaviour, in process, on Django models.

This is the default: no freezer-api service is needed.  Documents live in the tables of
``freezer_ui/models.py`` (database alias ``FREEZER_UI_DATABASE``).  Rules and server-side
behaviours follow freezer-api 19.0.0 with its sqlalchemy backend: the same validation verdicts
(``freezer_ui/api/schemas.py``), inline job actions stored as actions of their own and jobs
referring to them, the job's client must be registered and able to run its actions, job events
and session actions change the same fields.  Two deliberate differences: every write happens in
one transaction (freezer-api can leave the actions of a refused job behind), and deleting or
updating a missing document raises ``NotFound`` (freezer-api answers 204/200).

Every query is filtered by the caller's project; only ``list(all_projects=True)`` for an admin
lifts the filter.  Another project's document is reported as ``NotFound``, never returned.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Literal, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from freezer_ui import conf, models
from freezer_ui.api import schemas
from freezer_ui.api.exceptions import (
    Conflict,
    Forbidden,
    FreezerAPIError,
    NotFound,
    ValidationError,
)
from freezer_ui.api.search import matches, search_text
from freezer_ui.api.transports.base import (
    BaseTransport,
    Context,
    JobEvent,
    Kind,
    Page,
    Search,
    schedule_matches,
)

MODELS: dict[Kind, type[models.Document]] = {
    "jobs": models.Job,
    "actions": models.Action,
    "sessions": models.Session,
    "clients": models.Client,
    "backups": models.Backup,
    "job_runs": models.JobRun,
}
_KIND_OF: dict[type[Model], Kind] = {model: kind for kind, model in MODELS.items()}
_NOUNS: dict[Kind, str] = {
    "jobs": "job",
    "actions": "action",
    "sessions": "session",
    "clients": "client",
    "backups": "backup",
    "job_runs": "run",
}
_BATCH = 200
T = TypeVar("T")
# freezer-api's default hold-off window of a session start, in seconds.
SESSION_HOLD_OFF = 30


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prefixed(error: ValidationError, prefix: str) -> ValidationError:
    return ValidationError(
        {f"{prefix}.{path}" if path else prefix: m for path, m in error.errors.items()}
    )


class _Stale(Exception):
    """A row changed between our read and our conditional write: the operation is rerun."""


# Reruns of one operation losing to concurrent writers before it gives up with Conflict.
_WRITE_ATTEMPTS = 50


def _retried(method: Callable[..., T]) -> Callable[..., T]:
    """Run a write in one transaction, again from its reads while a row it writes went stale
    (every write goes through ``_store``'s conditional update)."""

    @functools.wraps(method)
    def run(self: EmbeddedTransport, *args: Any, **kwargs: Any) -> T:
        for _ in range(_WRITE_ATTEMPTS):
            try:
                with transaction.atomic(using=self.using):
                    return method(self, *args, **kwargs)
            except _Stale:
                continue
        raise Conflict(
            f"gave up after {_WRITE_ATTEMPTS} attempts: other writers keep changing the document"
        )

    return run


class EmbeddedTransport(BaseTransport):
    """Stores documents with the Django ORM in ``using`` (default ``FREEZER_UI_DATABASE``)."""

    def __init__(self, using: str | None = None) -> None:
        self.using = using or conf.database_alias()
        if self.using not in connections.databases:
            raise ImproperlyConfigured(
                f"FREEZER_UI_DATABASE is {self.using!r} but DATABASES has no such alias: add "
                f"DATABASES[{self.using!r}] = freezer_ui.conf.embedded_database(STATE_DIR) and "
                "DATABASE_ROUTERS = ['freezer_ui.db_router.FreezerUIRouter'] (docs/install.md)"
            )

    # ----------------------------------------------------------------- queries
    def _rows(self, ctx: Context, kind: Kind, *, all_projects: bool = False) -> QuerySet:
        rows = MODELS[kind].objects.using(self.using)
        if all_projects:
            return rows
        if kind == "clients":
            # A central client (one scheduler serving many projects) is visible to all.
            return rows.filter(Q(project_id=ctx.project_id) | Q(is_central=True))
        return rows.filter(project_id=ctx.project_id)

    def _row(self, ctx: Context, kind: Kind, doc_id: str, *, for_update: bool = False) -> Any:
        rows = self._rows(ctx, kind)
        if for_update:
            rows = rows.select_for_update()
        if kind == "clients":
            # Clients are addressed by client_id; the project's own one wins over a central
            # client of the same name.
            row = (
                rows.filter(client_id=doc_id, project_id=ctx.project_id).first()
                or rows.filter(client_id=doc_id).first()
            )
        else:
            row = rows.filter(id=doc_id).first()
        if row is None:
            raise NotFound(f"{_NOUNS[kind]} {doc_id} not found")
        return row

    def _outs(self, kind: Kind, rows: Iterable[Any]) -> list[dict[str, Any]]:
        """Documents as returned; a job's action references become the action documents."""
        rows = list(rows)
        docs = [copy.deepcopy(row.doc) for row in rows]
        if kind != "jobs":
            return docs
        # One query for the actions of all these jobs, not one per job.
        wanted = {ref["action_id"] for doc in docs for ref in doc.get("job_actions", [])}
        stored = {
            (action.project_id, action.id): action.doc
            for action in models.Action.objects.using(self.using).filter(id__in=wanted)
        }
        for row, doc in zip(rows, docs, strict=True):
            keys = [(row.project_id, ref["action_id"]) for ref in doc.get("job_actions", [])]
            # A deleted action drops out of the jobs that used it, as in freezer-api.
            doc["job_actions"] = [copy.deepcopy(stored[key]) for key in keys if key in stored]
        return docs

    def _out(self, kind: Kind, row: Any) -> dict[str, Any]:
        return self._outs(kind, [row])[0]

    def list(
        self,
        ctx: Context,
        kind: Kind,
        *,
        limit: int,
        offset: int,
        search: Search = None,
        all_projects: bool = False,
    ) -> Page:
        if all_projects and not ctx.is_admin:
            raise Forbidden("listing all projects requires the admin role")
        rows = self._rows(ctx, kind, all_projects=all_projects)
        if kind == "job_runs" and isinstance(search, Mapping):
            # A job's runs are listed often (the job's detail page): filter on the indexed
            # column, then let the structured match below check the rest.
            terms = list(search.get("match") or ())
            for term in terms:
                if isinstance(term, Mapping) and isinstance(term.get("job_id"), str):
                    rows = rows.filter(job_id=term["job_id"])
            if not search.get("match_not") and all(
                isinstance(t, Mapping) and set(t) == {"job_id"} and isinstance(t["job_id"], str)
                for t in terms
            ):
                search = None  # nothing left to match in Python: page in SQL
        if isinstance(search, str) or not search:
            if search and search.strip():
                rows = rows.filter(search_text__contains=search.strip().lower())
            page = self._outs(kind, rows[offset : offset + limit + 1])
        else:
            # Structured search compares values anywhere in the document: filtered here,
            # as freezer-api does, then paged.
            page = []
            seen = 0
            for batch in _batches(rows.iterator(chunk_size=_BATCH), _BATCH):
                for doc in self._outs(kind, batch):
                    if not matches(doc, search):
                        continue
                    seen += 1
                    if seen > offset:
                        page.append(doc)
                if len(page) > limit:
                    break
        return Page(page[:limit], has_more=len(page) > limit)

    def get(self, ctx: Context, kind: Kind, doc_id: str) -> dict[str, Any]:
        return self._out(kind, self._row(ctx, kind, doc_id))

    # ----------------------------------------------------------------- writes
    def _save(
        self, model: type[Model], doc_id: str, ctx: Context, doc: dict, **columns: Any
    ) -> Any:
        now = timezone.now()
        row = model(
            id=doc_id,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            created_at=now,
            updated_at=now,
            doc=doc,
            **columns,
        )
        row.search_text = search_text(self._out(_KIND_OF[model], row))
        row.save(using=self.using, force_insert=True)
        return row

    def _store(self, row: Any, doc: dict[str, Any], ctx: Context, **columns: Any) -> None:
        """Write ``row`` back only if nobody wrote it since we read it (raises ``_Stale``).

        One conditional ``UPDATE ... WHERE pk = ? AND updated_at = <as read>``: the row count
        says whether the row is still as read, on sqlite (whatever its transaction mode) and
        PostgreSQL alike.  Without it two read-modify-writes (a dashboard event and an agent's
        status write) could each overwrite the other's change.  ``_retried`` reruns the caller.
        """
        read_at = row.updated_at
        now = timezone.now()
        if read_at is not None and now <= read_at:
            now = read_at + timedelta(microseconds=1)  # the version must change
        row.doc = doc
        row.user_id = ctx.user_id
        row.updated_at = now
        # Searchable as returned: a job is found by its actions' fields (backup_name, path...).
        row.search_text = search_text(self._out(_KIND_OF[type(row)], row))
        for name, value in columns.items():
            setattr(row, name, value)
        fields = {
            "doc": row.doc,
            "user_id": row.user_id,
            "updated_at": row.updated_at,
            "search_text": row.search_text,
            **columns,
        }
        won = (
            type(row)
            .objects.using(self.using)
            .filter(pk=row.pk, updated_at=read_at)
            .update(**fields)
        )
        if won != 1:
            raise _Stale

    def _taken(self, kind: Kind, doc_id: str) -> bool:
        # IDs are global, as in freezer-api: a collision with another project is a conflict
        # too (without saying whose document it is).
        return MODELS[kind].objects.using(self.using).filter(id=doc_id).exists()

    def _resolve_actions(self, ctx: Context, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The action documents of a job: referenced ones looked up, inline ones created."""
        resolved = []
        for index, entry in enumerate(entries):
            where = f"job_actions.{index}"
            action_id = entry.get("action_id")
            if action_id:
                row = self._rows(ctx, "actions").filter(id=action_id).first()
                if row is None:
                    raise ValidationError({f"{where}.action_id": f"no action with ID {action_id}"})
                given = entry.get("freezer_action")
                if given is not None and not _same_action(given, row.doc.get("freezer_action")):
                    raise ValidationError(
                        {
                            f"{where}.freezer_action": f"differs from stored action {action_id}; "
                            "update that action, or omit action_id to create a new one"
                        }
                    )
                resolved.append(row.doc)
                continue
            try:
                action = schemas.new_action(entry, project_id=ctx.project_id, user_id=ctx.user_id)
            except ValidationError as error:
                raise _prefixed(error, where) from None
            self._save(models.Action, action["action_id"], ctx, action)
            resolved.append(action)
        return resolved

    def _check_client(self, ctx: Context, client_id: str, actions: list[dict[str, Any]]) -> None:
        try:
            client = self._row(ctx, "clients", client_id)
        except NotFound:
            raise ValidationError(
                {"client_id": f"no client registered with ID {client_id}"}
            ) from None
        schemas.check_client_capabilities(
            [a.get("freezer_action") or {} for a in actions], client.doc
        )

    def _job_columns(self, job: dict[str, Any]) -> dict[str, Any]:
        return {"client_id": job.get("client_id") or "", "session_id": job.get("session_id") or ""}

    @_retried
    def create(self, ctx: Context, kind: Kind, doc: Mapping[str, Any]) -> str:
        with transaction.atomic(using=self.using):
            return getattr(self, f"_create_{kind}")(ctx, doc)

    def _create_jobs(self, ctx: Context, doc: Mapping[str, Any]) -> str:
        job = schemas.new_job(doc, project_id=ctx.project_id, user_id=ctx.user_id)
        if self._taken("jobs", job["job_id"]):
            raise Conflict(f"job {job['job_id']} already exists")
        actions = self._resolve_actions(ctx, job["job_actions"])
        self._check_client(ctx, job["client_id"], actions)
        job["job_actions"] = [{"action_id": a["action_id"]} for a in actions]
        self._save(models.Job, job["job_id"], ctx, job, **self._job_columns(job))
        return job["job_id"]

    def _create_actions(self, ctx: Context, doc: Mapping[str, Any]) -> str:
        action = schemas.new_action(doc, project_id=ctx.project_id, user_id=ctx.user_id)
        if self._taken("actions", action["action_id"]):
            raise Conflict(f"action {action['action_id']} already exists")
        self._save(models.Action, action["action_id"], ctx, action)
        return action["action_id"]

    def _create_sessions(self, ctx: Context, doc: Mapping[str, Any]) -> str:
        session = schemas.new_session(doc, project_id=ctx.project_id, user_id=ctx.user_id)
        session.setdefault("time_start", -1)
        session.setdefault("time_end", -1)
        self._save(models.Session, session["session_id"], ctx, session)
        return session["session_id"]

    def _create_clients(self, ctx: Context, info: Mapping[str, Any]) -> str:
        doc = schemas.new_client(info, project_id=ctx.project_id, user_id=ctx.user_id)
        client = doc["client"]
        client_id = client["client_id"]
        central = bool(client.get("is_central"))
        if central and not ctx.is_admin:
            raise Forbidden("registering a central client requires the admin role")
        for capability, default in (
            ("supported_actions", schemas.SUPPORTED_ACTIONS),
            ("supported_modes", schemas.SUPPORTED_MODES),
            ("supported_storages", schemas.SUPPORTED_STORAGES),
            ("supported_engines", schemas.SUPPORTED_ENGINES),
        ):
            client.setdefault(capability, list(default))
        client["is_central"] = central
        rows = models.Client.objects.using(self.using)
        if central:
            existing = rows.filter(
                client_id=client_id, doc__client__hostname=client.get("hostname")
            ).first()
        else:
            existing = self._rows(ctx, "clients").filter(client_id=client_id).first()
        if existing is not None:
            if existing.project_id != ctx.project_id:
                raise Conflict(f"client {client_id} is registered by another project")
            # Re-registration refreshes the description and capabilities, never the identity.
            stored = copy.deepcopy(existing.doc)
            for key in ("description", *(k for k in client if k.startswith("supported_"))):
                stored["client"][key] = client.get(key)
            self._store(existing, stored, ctx)
            return client_id
        if self._taken("clients", client["uuid"]):
            raise Conflict(f"client uuid {client['uuid']} already exists")
        self._save(models.Client, client["uuid"], ctx, doc, client_id=client_id, is_central=central)
        return client_id

    def _create_backups(self, ctx: Context, metadata: Mapping[str, Any]) -> str:
        record = schemas.new_backup(metadata, project_id=ctx.project_id, user_id=ctx.user_id)
        meta = record["backup_metadata"]
        stamp = meta.get("time_stamp")
        self._save(
            models.Backup,
            record["backup_id"],
            ctx,
            record,
            client_id=str(meta.get("client_id") or ""),
            time_stamp=stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None,
            status=record["status"],
        )
        return record["backup_id"]

    def _create_job_runs(self, ctx: Context, doc: Mapping[str, Any]) -> str:
        run = schemas.new_job_run(doc, project_id=ctx.project_id, user_id=ctx.user_id)
        # A run belongs to a job of the caller's project: nobody can file runs under (or learn
        # about) another project's job.
        if not self._rows(ctx, "jobs").filter(id=run["job_id"]).exists():
            raise ValidationError({"job_id": f"no job with ID {run['job_id']}"})
        if self._taken("job_runs", run["run_id"]):
            raise Conflict(f"run {run['run_id']} already exists")
        self._save(
            models.JobRun,
            run["run_id"],
            ctx,
            run,
            job_id=run["job_id"],
            client_id=str(run.get("client_id") or ""),
            status=run["status"],
        )
        return run["run_id"]

    @_retried
    def update(self, ctx: Context, kind: Kind, doc_id: str, patch: Mapping[str, Any]) -> None:
        if kind == "clients":
            raise FreezerAPIError("a client is updated by registering it again", status_code=405)
        with transaction.atomic(using=self.using):
            row = self._row(ctx, kind, doc_id, for_update=True)
            getattr(self, f"_update_{kind}")(ctx, row, patch)

    def _update_jobs(self, ctx: Context, row: Any, patch: Mapping[str, Any]) -> None:
        changes = schemas.job_patch(patch, project_id=ctx.project_id, user_id=ctx.user_id)
        job = {**row.doc, **changes}
        if "job_actions" in changes:
            actions = self._resolve_actions(ctx, changes["job_actions"])
            self._check_client(ctx, job["client_id"], actions)
            job["job_actions"] = [{"action_id": a["action_id"]} for a in actions]
        self._store(row, job, ctx, **self._job_columns(job))

    def _update_actions(self, ctx: Context, row: Any, patch: Mapping[str, Any]) -> None:
        self._store(row, {**row.doc, **schemas.action_patch(patch)}, ctx)

    def _update_sessions(self, ctx: Context, row: Any, patch: Mapping[str, Any]) -> None:
        changes = schemas.session_patch(patch)
        session = {**row.doc, **changes}
        if isinstance(changes.get("jobs"), Mapping):
            # Jobs merge into the session's jobs instead of replacing them (freezer-api).
            session["jobs"] = {**(row.doc.get("jobs") or {}), **changes["jobs"]}
        self._store(row, session, ctx)

    def _update_backups(self, ctx: Context, row: Any, patch: Mapping[str, Any]) -> None:
        changes = schemas.backup_patch(patch)
        record = copy.deepcopy(row.doc)
        if isinstance(changes.get("backup_metadata"), Mapping):
            record["backup_metadata"].update(changes["backup_metadata"])
        record["status"] = changes.get("status") or record["status"]
        stamp = record["backup_metadata"].get("time_stamp")
        self._store(
            row,
            record,
            ctx,
            status=record["status"],
            time_stamp=stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None,
        )

    def _update_job_runs(self, ctx: Context, row: Any, patch: Mapping[str, Any]) -> None:
        # job_id and client_id are not patchable (the schema refuses them): a run never moves.
        changes = schemas.job_run_patch(patch)
        run = {**row.doc, **changes}
        self._store(row, run, ctx, status=run["status"], client_id=str(run.get("client_id") or ""))

    def delete(self, ctx: Context, kind: Kind, doc_id: str) -> None:
        with transaction.atomic(using=self.using):
            row = self._row(ctx, kind, doc_id, for_update=True)
            if kind == "clients" and row.project_id != ctx.project_id:
                raise Forbidden(f"client {doc_id} belongs to another project")
            row.delete(using=self.using)
            if kind == "jobs":
                # A job's run history goes with it: nothing else can reach those runs.
                models.JobRun.objects.using(self.using).filter(
                    project_id=row.project_id, job_id=doc_id
                ).delete()

    # ----------------------------------------------------------------- events
    @_retried
    def job_event(self, ctx: Context, job_id: str, event: JobEvent) -> str:
        if event not in ("start", "stop", "abort"):
            raise ValidationError({"": f"unknown job event {event!r}"})
        with transaction.atomic(using=self.using):
            row = self._row(ctx, "jobs", job_id, for_update=True)
            job = copy.deepcopy(row.doc)
            schedule = job.setdefault("job_schedule", {})
            if schedule.get("event") == event:
                return f"{event} already requested"
            schedule["event"] = event
            if event == "start":
                # A new run starts with a clean slate; stop/abort leave status to the agent.
                schedule["status"] = ""
                schedule["result"] = ""
            check = {**job, "job_actions": self._out("jobs", row)["job_actions"]}
            schemas.replaced_job(
                check, project_id=row.project_id, user_id=ctx.user_id, job_id=job_id
            )
            self._store(row, job, ctx)
            return "success"

    @_retried
    def job_update_if(
        self,
        ctx: Context,
        job_id: str,
        expect: Mapping[str, Any],
        patch: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        # The check and the write are one conditional UPDATE (see _store): of two callers
        # that both saw the job in the expected state, exactly one writes; the other is rerun
        # by _retried, reads the winner's state and gets None.
        row = self._row(ctx, "jobs", job_id, for_update=True)
        job = copy.deepcopy(row.doc)
        schedule = job.setdefault("job_schedule", {})
        if not schedule_matches(schedule, expect):
            return None
        schedule.update(copy.deepcopy(dict(patch)))
        # Never store what freezer-api would refuse (a status outside its enum...).
        check = {**job, "job_actions": self._out("jobs", row)["job_actions"]}
        schemas.replaced_job(check, project_id=row.project_id, user_id=ctx.user_id, job_id=job_id)
        self._store(row, job, ctx, **self._job_columns(job))
        return copy.deepcopy(schedule)

    @_retried
    def session_add_job(self, ctx: Context, session_id: str, job_id: str) -> None:
        with transaction.atomic(using=self.using):
            job_row = self._row(ctx, "jobs", job_id, for_update=True)
            session_row = self._row(ctx, "sessions", session_id, for_update=True)
            schedule = job_row.doc.get("job_schedule", {})
            session = copy.deepcopy(session_row.doc)
            session.setdefault("jobs", {})[job_id] = {
                "client_id": job_row.doc.get("client_id"),
                "status": schedule.get("status", ""),
                "result": schedule.get("result", ""),
                "time_started": schedule.get("time_started", ""),
                "time_ended": schedule.get("time_ended", ""),
            }
            self._store(session_row, session, ctx)
            # The job follows the session's schedule from now on (it replaces the job's own).
            job = {
                **job_row.doc,
                "session_id": session_id,
                "session_tag": session.get("session_tag", 0),
                "job_schedule": copy.deepcopy(session.get("schedule", {})),
            }
            self._store(job_row, job, ctx, **self._job_columns(job))

    @_retried
    def session_remove_job(self, ctx: Context, session_id: str, job_id: str) -> None:
        with transaction.atomic(using=self.using):
            session_row = self._row(ctx, "sessions", session_id, for_update=True)
            job_row = self._row(ctx, "jobs", job_id, for_update=True)
            session = copy.deepcopy(session_row.doc)
            (session.get("jobs") or {}).pop(job_id, None)
            self._store(session_row, session, ctx)
            job = {
                **job_row.doc,
                "session_id": "",
                "session_tag": 0,
                "job_schedule": {"event": "stop"},
            }
            self._store(job_row, job, ctx, **self._job_columns(job))

    @_retried
    def session_action(
        self, ctx: Context, session_id: str, action: Literal["start", "end"], params: dict
    ) -> dict[str, Any]:
        with transaction.atomic(using=self.using):
            row = self._row(ctx, "sessions", session_id, for_update=True)
            session = copy.deepcopy(row.doc)
            jobs = session.setdefault("jobs", {})
            job_id = params.get("job_id")
            if job_id not in jobs:
                raise ValidationError({"job_id": f"job {job_id} is not in session {session_id}"})
            now = int(time.time())
            if action == "start":
                result = self._session_start(session, job_id, int(params["current_tag"]), now)
            elif action == "end":
                result = self._session_end(session, job_id, params.get("result", ""), now)
            else:
                raise ValidationError({"": f"unknown session action {action!r}"})
            if result == "success":
                self._store(row, session, ctx)
            return {"result": result, "session_tag": int(session.get("session_tag", 0))}

    @staticmethod
    def _session_start(session: dict, job_id: str, job_tag: int, now: int) -> str:
        tag = int(session.get("session_tag", 0))
        if job_tag > tag:
            raise ValidationError(
                {"current_tag": f"requested tag {job_tag} is above the session tag {tag}"}
            )
        job = session["jobs"][job_id]
        within_hold_off = now - session.get("time_start", 0) <= session.get(
            "hold_off", SESSION_HOLD_OFF
        )
        if within_hold_off:
            # Another member started the session moments ago: late members join that run.
            if job_tag < tag:
                job.update(status="running", result="", time_started=now)
                return "success"
            return "hold-off"
        if job_tag != tag:
            return "out-of-sync"
        session.update(session_tag=tag + 1, time_start=now, status="running", result="")
        job.update(status="running", result="", time_started=now)
        return "success"

    @staticmethod
    def _session_end(session: dict, job_id: str, result: str, now: int) -> str:
        session["jobs"][job_id].update(status="completed", result=result, time_ended=now)
        overall = "success"
        for job in session["jobs"].values():
            if job.get("status") != "completed":
                overall = "running"
                break
            if job.get("result") != "success":
                overall = "fail"
                break
        if session.get("status") != "completed" and overall in ("fail", "success"):
            session.update(time_end=now, result=overall, status="completed")
        return "success"


def _same_action(given: Any, stored: Any) -> bool:
    # freezer-api compares the freezer_action dicts ignoring bookkeeping keys.
    if not isinstance(given, Mapping) or not isinstance(stored, Mapping):
        return given == stored
    ignore = {"_version", "user_id"}
    keys = (set(given) | set(stored)) - ignore
    return all(given.get(k) == stored.get(k) for k in keys)
