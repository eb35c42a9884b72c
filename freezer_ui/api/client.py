"""FreezerClient: one client for freezer-api v2 documents, whatever stores them.

The managers mirror python-freezerclient v2 (``client.jobs.list(limit, offset, search)``,
``get``, ``create``, ``update``, ``delete``, ``jobs.start``, ``sessions.add_job`` ...), so code
written against one reads like code written against the other.  The client knows nothing of
Django or HTTP: it checks the caller's right to use ``all_projects`` and hands everything else to
its transport (see ``transports/base.py``)::

    client = FreezerClient(EmbeddedTransport(), project_id=p, user_id=u, roles=["member"])
    job_id = client.jobs.create({"client_id": "host1", "job_actions": [...], ...})
    page = client.jobs.list(limit=20)        # a list of dicts; page.has_more
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from freezer_ui.api.exceptions import Forbidden
from freezer_ui.api.transports.base import BaseTransport, Context, Kind, Page, Search


class _Manager:
    kind: Kind

    def __init__(self, client: FreezerClient) -> None:
        self._client = client

    @property
    def _transport(self) -> BaseTransport:
        return self._client.transport

    @property
    def _ctx(self) -> Context:
        return self._client.context

    def list(
        self, limit: int = 20, offset: int = 0, search: Search = None, all_projects: bool = False
    ) -> Page:
        """One page of the project's documents (every project's with ``all_projects``)."""
        if all_projects and not self._ctx.is_admin:
            # Checked here, not only by hiding links: a forged request gets no data either.
            raise Forbidden("listing all projects requires the admin role")
        if limit < 1 or offset < 0:
            raise ValueError("limit must be >= 1 and offset >= 0")
        return self._transport.list(
            self._ctx,
            self.kind,
            limit=limit,
            offset=offset,
            search=search,
            all_projects=all_projects,
        )

    def get(self, doc_id: str) -> dict[str, Any]:
        return self._transport.get(self._ctx, self.kind, doc_id)

    def create(self, doc: Mapping[str, Any]) -> str:
        return self._transport.create(self._ctx, self.kind, doc)

    def update(self, doc_id: str, patch: Mapping[str, Any]) -> None:
        self._transport.update(self._ctx, self.kind, doc_id, patch)

    def delete(self, doc_id: str) -> None:
        self._transport.delete(self._ctx, self.kind, doc_id)


class JobManager(_Manager):
    kind: Kind = "jobs"

    def start(self, job_id: str) -> str:
        """Ask the agent to run the job now; returns ``success`` or ``start already requested``."""
        return self._transport.job_event(self._ctx, job_id, "start")

    def stop(self, job_id: str) -> str:
        return self._transport.job_event(self._ctx, job_id, "stop")

    def abort(self, job_id: str) -> str:
        return self._transport.job_event(self._ctx, job_id, "abort")

    def update_if(
        self, job_id: str, expect: Mapping[str, Any], patch: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Set ``patch``'s ``job_schedule`` keys if ``expect``'s still hold; the new schedule,
        or None.  Atomic on the embedded transport, read-check-write on freezer-api."""
        return self._transport.job_update_if(self._ctx, job_id, expect, patch)


class ActionManager(_Manager):
    kind: Kind = "actions"


class SessionManager(_Manager):
    kind: Kind = "sessions"

    def add_job(self, session_id: str, job_id: str) -> None:
        self._transport.session_add_job(self._ctx, session_id, job_id)

    def remove_job(self, session_id: str, job_id: str) -> None:
        self._transport.session_remove_job(self._ctx, session_id, job_id)

    def start(self, session_id: str, job_id: str, session_tag: int) -> dict[str, Any]:
        """Tell the service a job of the session starts (freezerclient's ``start_session``)."""
        params = {"job_id": job_id, "current_tag": session_tag}
        return self._transport.session_action(self._ctx, session_id, "start", params)

    def end(self, session_id: str, job_id: str, session_tag: int, result: str) -> dict[str, Any]:
        params = {"job_id": job_id, "current_tag": session_tag, "result": result}
        return self._transport.session_action(self._ctx, session_id, "end", params)


class ClientManager(_Manager):
    kind: Kind = "clients"


class BackupManager(_Manager):
    kind: Kind = "backups"


class JobRunManager(_Manager):
    """The agent's run history (ours; the remote transport has none: see ``supports``)."""

    kind: Kind = "job_runs"

    def list(
        self,
        limit: int = 20,
        offset: int = 0,
        search: Search = None,
        all_projects: bool = False,
        job_id: str | None = None,
    ) -> Page:
        """Runs newest first; only ``job_id``'s when given."""
        if job_id is not None:
            if search is not None:
                raise ValueError("give job_id or search, not both")
            search = {"match": [{"job_id": job_id}]}
        return super().list(limit=limit, offset=offset, search=search, all_projects=all_projects)

    @property
    def available(self) -> bool:
        return self._transport.supports(self.kind)


class FreezerClient:
    """Jobs, actions, sessions, clients, backups and job runs of one project, for one user."""

    def __init__(
        self,
        transport: BaseTransport,
        *,
        project_id: str,
        user_id: str,
        roles: Iterable[str] = (),
    ) -> None:
        if not project_id or not user_id:
            raise ValueError("a project-scoped user is required (project_id and user_id)")
        self.transport = transport
        self.context = Context(project_id=project_id, user_id=user_id, roles=frozenset(roles))
        self.jobs = JobManager(self)
        self.actions = ActionManager(self)
        self.sessions = SessionManager(self)
        self.clients = ClientManager(self)
        self.backups = BackupManager(self)
        self.job_runs = JobRunManager(self)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> FreezerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
