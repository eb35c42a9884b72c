"""Remote transport: a real freezer-api through python-freezerclient (scale-out mode).

The user's Horizon token is exchanged for a token scoped to the current project
(``keystoneauth1.identity.v3.Token``): python-freezerclient given only ``token=`` fetches an
unscoped token, which Keystone scopes to the user's *default* project, and freezer-api then
answers 403 for every other project (docs: NOTES-platform.md).

freezer-api 19.0.0 behaviours this transport designs around:

* documents are checked with our own rules first (same verdicts, but errors that name the
  field); the server stays the authority and its 400/422 answers still map to ValidationError;
* a job whose ``job_actions`` hold only ``action_id`` gets HTTP 500: such entries are expanded
  into the full action documents before sending;
* an admin listing jobs gets every project's jobs: unless ``all_projects`` was asked for, the
  list is filtered to the current project here, paging through the server's pages;
* ``jobs.list`` filters by this host's client_id: ``list_all`` is the project's list;
* free-text search is not implemented by the sqlalchemy backend: text searches are matched
  here; structured ``{"match": [...]}`` searches go to the server;
* a PATCH without ``job_schedule`` wipes the job's schedule: the current one is sent along;
* deleting a missing document answers 204, and POST ``/jobs/<id>`` replaces an existing job:
  existence is checked first so both behave as in the embedded transport;
* only jobs can be listed across projects;
* ``job_update_if`` is read-check-write (no conditional update exists in freezer-api);
* there is no run history (``job_runs``): every call on that kind raises ``Unavailable`` saying
  so, and ``supports("job_runs")`` is False.  The agent then keeps the history on its own host
  and the backup records carry each backup's outcome (docs/agent.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import requests
from freezerclient import exceptions as freezer_exceptions
from keystoneauth1 import exceptions as ks_exceptions

from freezer_ui.api import schemas
from freezer_ui.api.exceptions import (
    Conflict,
    Forbidden,
    FreezerAPIError,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from freezer_ui.api.search import matches
from freezer_ui.api.transports.base import (
    ID_KEYS,
    BaseTransport,
    Context,
    JobEvent,
    Kind,
    Page,
    Search,
    schedule_matches,
)

T = TypeVar("T")

_BY_STATUS: dict[int, type[FreezerAPIError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}
_EVENT_CALLS = {"start": "start_job", "stop": "stop_job", "abort": "abort_job"}


def error_for_status(status: int | None, message: str) -> FreezerAPIError:
    """Our exception for an HTTP answer of freezer-api (or Keystone)."""
    message = re.sub(r"^\[\*\] Error \d+: ", "", message).strip()
    if status in (400, 422):
        return ValidationError({"": message or "the document was refused"})
    if status is not None and status in _BY_STATUS:
        return _BY_STATUS[status](message)
    if status is not None and status >= 500:
        return FreezerAPIError(f"freezer-api failed ({status}): {message}", status_code=status)
    return FreezerAPIError(message, status_code=status)


def build_freezer_client(
    *,
    auth_url: str,
    token: str,
    project_id: str,
    endpoint: str | None,
    insecure: bool = False,
    cacert: str | None = None,
) -> Any:
    """python-freezerclient's v2 Client on a project-scoped session made from ``token``."""
    from freezerclient.v2.client import Client
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Token(auth_url=auth_url, token=token, project_id=project_id)
    verify: bool | str = False if insecure else (cacert or True)
    session = ks_session.Session(auth=auth, verify=verify)
    # project_id given: otherwise the client asks Keystone for it on construction.
    return Client(
        session=session,
        endpoint=endpoint,
        project_id=project_id,
        insecure=insecure,
        cacert=cacert,
    )


class RemoteTransport(BaseTransport):
    """Talks to freezer-api as the Horizon user, in the user's current project."""

    def __init__(
        self,
        *,
        project_id: str,
        auth_url: str | None = None,
        token: str | None = None,
        endpoint: str | None = None,
        insecure: bool = False,
        cacert: str | None = None,
        freezer: Any = None,
        page_size: int = 100,
    ) -> None:
        self.project_id = project_id
        self.endpoint = endpoint
        self.page_size = page_size
        if freezer is None:
            if not auth_url or not token:
                raise Unavailable("remote mode needs the Keystone URL and the user's token")
            freezer = self._call(
                build_freezer_client,
                auth_url=auth_url,
                token=token,
                project_id=project_id,
                endpoint=endpoint,
                insecure=insecure,
                cacert=cacert,
            )
        self.freezer = freezer

    # ----------------------------------------------------------------- plumbing
    def _where(self) -> str:
        return self.endpoint or "the 'backup' endpoint of the Keystone catalog"

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one freezerclient call, translating every failure into our exceptions."""
        try:
            return fn(*args, **kwargs)
        except FreezerAPIError:
            raise
        except ks_exceptions.EndpointNotFound:
            raise Unavailable(
                "No freezer-api endpoint: FREEZER_UI_API_URL is not set and the Keystone "
                "catalog has no service of type 'backup'."
            ) from None
        except (requests.ConnectionError, requests.Timeout, ks_exceptions.ConnectionError) as e:
            raise Unavailable(f"Cannot reach freezer-api at {self._where()}: {e}") from None
        except ks_exceptions.DiscoveryFailure as e:
            raise Unavailable(f"Cannot reach Keystone: {e}") from None
        except ks_exceptions.HttpError as e:
            raise error_for_status(e.http_status, e.message or str(e)) from None
        except ks_exceptions.ClientException as e:
            raise Unavailable(f"Keystone refused to scope the token: {e}") from None
        except freezer_exceptions.ApiClientException as e:
            # freezerclient raises it for any status a call did not expect.
            raise error_for_status(e.status_code, str(e)) from None

    def supports(self, kind: Kind) -> bool:
        return kind != "job_runs" and super().supports(kind)

    @staticmethod
    def _check_kind(kind: Kind) -> None:
        if kind == "job_runs":
            raise Unavailable(
                "Run history needs the embedded API (FREEZER_UI_API_MODE = 'embedded'): "
                "freezer-api 19.0.0 stores no job runs. A job's last result is on the job; "
                "each backup's outcome and log are on its backup record."
            )

    def _manager(self, kind: Kind) -> Any:
        self._check_kind(kind)
        return getattr(self.freezer, kind)

    def _visible(self, ctx: Context, kind: Kind, doc: Mapping[str, Any]) -> bool:
        if doc.get("project_id") == ctx.project_id:
            return True
        return kind == "clients" and bool((doc.get("client") or {}).get("is_central"))

    # ----------------------------------------------------------------- reads
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
        self._check_kind(kind)
        if all_projects and not ctx.is_admin:
            raise Forbidden("listing all projects requires the admin role")
        if all_projects and kind != "jobs":
            raise FreezerAPIError(
                f"freezer-api lists {kind} one project at a time; all_projects works for jobs",
                status_code=501,
            )
        manager = self._manager(kind)
        server_search = dict(search) if isinstance(search, Mapping) else None

        def fetch(limit: int, offset: int) -> list[dict[str, Any]]:
            if kind == "jobs":
                return self._call(
                    manager.list_all,
                    limit=limit,
                    offset=offset,
                    search=server_search,
                    all_projects=all_projects,
                )
            return self._call(manager.list, limit=limit, offset=offset, search=server_search)

        text = search.strip() if isinstance(search, str) else ""
        # An admin's job list holds every project's jobs, whatever it asked for.
        foreign = kind == "jobs" and ctx.is_admin and not all_projects
        if not text and not foreign:
            docs = [
                d for d in fetch(limit + 1, offset) if all_projects or self._visible(ctx, kind, d)
            ]
            return Page(docs[:limit], has_more=len(docs) > limit)

        def keep(doc: dict[str, Any]) -> bool:
            return (all_projects or self._visible(ctx, kind, doc)) and matches(doc, text)

        selected: list[dict[str, Any]] = []
        server_offset = 0
        while len(selected) < offset + limit + 1:
            batch = fetch(self.page_size, server_offset)
            selected += [doc for doc in batch if keep(doc)]
            if len(batch) < self.page_size:
                break
            server_offset += len(batch)
        page = selected[offset : offset + limit + 1]
        return Page(page[:limit], has_more=len(page) > limit)

    def get(self, ctx: Context, kind: Kind, doc_id: str) -> dict[str, Any]:
        doc = self._call(self._manager(kind).get, doc_id)
        # An admin's token reads any project's job: never show another project's here.
        if not doc or not self._visible(ctx, kind, doc):
            raise NotFound(f"{kind[:-1]} {doc_id} not found")
        return doc

    def _exists(self, ctx: Context, kind: Kind, doc_id: str) -> bool:
        try:
            self.get(ctx, kind, doc_id)
        except NotFound:
            return False
        return True

    # ----------------------------------------------------------------- writes
    def _full_job_actions(self, ctx: Context, entries: Any) -> Any:
        if not isinstance(entries, list):
            return entries
        full = []
        for index, entry in enumerate(entries):
            if (
                isinstance(entry, Mapping)
                and entry.get("action_id")
                and "freezer_action" not in entry
            ):
                action_id = entry["action_id"]
                try:
                    entry = self.get(ctx, "actions", action_id)
                except NotFound:
                    path = f"job_actions.{index}.action_id"
                    raise ValidationError({path: f"no action with ID {action_id}"}) from None
            full.append(entry)
        return full

    def create(self, ctx: Context, kind: Kind, doc: Mapping[str, Any]) -> str:
        self._check_kind(kind)
        owner = {"project_id": ctx.project_id, "user_id": ctx.user_id}
        body = dict(doc)
        if kind == "jobs":
            schemas.new_job(body, **owner)
            body["job_actions"] = self._full_job_actions(ctx, body.get("job_actions"))
        elif kind == "actions":
            schemas.new_action(body, **owner)
        elif kind == "sessions":
            schemas.new_session(body, **owner)
            body.pop("session_id", None)  # POST /sessions/<id> would replace, not create
        elif kind == "clients":
            schemas.new_client(body, **owner)
        else:
            schemas.new_backup(body, **owner)
        id_key = ID_KEYS[kind]
        if kind in ("jobs", "actions") and body.get(id_key):
            # POST /<kind>/<id> replaces a document of that ID: create must not.
            if self._exists(ctx, kind, body[id_key]):
                raise Conflict(f"{kind[:-1]} {body[id_key]} already exists")
        return self._call(self._manager(kind).create, body)

    def update(self, ctx: Context, kind: Kind, doc_id: str, patch: Mapping[str, Any]) -> None:
        self._check_kind(kind)
        body = dict(patch)
        if kind == "clients":
            raise FreezerAPIError("a client is updated by registering it again", status_code=405)
        if kind == "jobs":
            schemas.job_patch(body, project_id=ctx.project_id, user_id=ctx.user_id)
        elif kind == "actions":
            schemas.action_patch(body)
        elif kind == "sessions":
            schemas.session_patch(body)
        else:
            schemas.backup_patch(body)
        # NotFound before anything is sent (freezer-api would answer a missing job's PATCH 404,
        # but a job PATCH needs the current schedule anyway, see the module docstring).
        current = self.get(ctx, kind, doc_id)
        if kind == "jobs":
            body.setdefault("job_schedule", current.get("job_schedule") or {})
            if "job_actions" in body:
                body["job_actions"] = self._full_job_actions(ctx, body["job_actions"])
        self._call(self._manager(kind).update, doc_id, body)

    def delete(self, ctx: Context, kind: Kind, doc_id: str) -> None:
        doc = self.get(ctx, kind, doc_id)
        if kind == "clients" and doc.get("project_id") != ctx.project_id:
            raise Forbidden(f"client {doc_id} belongs to another project")
        self._call(self._manager(kind).delete, doc_id)

    def job_event(self, ctx: Context, job_id: str, event: JobEvent) -> str:
        if event not in _EVENT_CALLS:
            raise ValidationError({"": f"unknown job event {event!r}"})
        self.get(ctx, "jobs", job_id)
        answer = self._call(getattr(self.freezer.jobs, _EVENT_CALLS[event]), job_id)
        return (answer or {}).get("result", "")

    def job_update_if(
        self,
        ctx: Context,
        job_id: str,
        expect: Mapping[str, Any],
        patch: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        # Read, check, write: NOT atomic.  freezer-api 19.0.0 has no conditional update (no
        # ETag/If-Match, and the sqlalchemy backend ignores _version), so two callers can both
        # pass the check between the read and the write.  The agent relies on ownership in
        # remote mode instead (one agent per client_id; docs/agent.md "Claims").
        job = self.get(ctx, "jobs", job_id)
        schedule = dict(job.get("job_schedule") or {})
        if not schedule_matches(schedule, expect):
            return None
        schedule.update(patch)
        self.update(ctx, "jobs", job_id, {"job_schedule": schedule})
        return schedule

    def session_add_job(self, ctx: Context, session_id: str, job_id: str) -> None:
        self.get(ctx, "sessions", session_id)
        self.get(ctx, "jobs", job_id)
        self._call(self.freezer.sessions.add_job, session_id, job_id)

    def session_remove_job(self, ctx: Context, session_id: str, job_id: str) -> None:
        self.get(ctx, "sessions", session_id)
        self.get(ctx, "jobs", job_id)
        self._call(self.freezer.sessions.remove_job, session_id, job_id)

    def session_action(
        self, ctx: Context, session_id: str, action: Literal["start", "end"], params: dict
    ) -> dict[str, Any]:
        self.get(ctx, "sessions", session_id)
        sessions = self.freezer.sessions
        if action == "start":
            return self._call(
                sessions.start_session, session_id, params["job_id"], params["current_tag"]
            )
        if action == "end":
            return self._call(
                sessions.end_session,
                session_id,
                params["job_id"],
                params["current_tag"],
                params["result"],
            )
        raise ValidationError({"": f"unknown session action {action!r}"})
