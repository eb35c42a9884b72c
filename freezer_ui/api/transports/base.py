"""The transport contract: what :class:`freezer_ui.api.client.FreezerClient` needs from a backend.

A transport stores and serves freezer-api v2 documents (jobs, actions, sessions, clients,
backups; plus ``job_runs``, the agent's run history, where the backend can hold it) for one
caller, described by a :class:`Context`.  Two implementations exist: ``embedded`` (Django
models, in process) and ``remote`` (python-freezerclient against a real freezer-api).  Like
httpx's ``BaseTransport``, it is the one seam to swap, so the client above can be driven by
any of them without patching.

Every method may raise the errors of :mod:`freezer_ui.api.exceptions` and no others:
``NotFound`` (also for another project's IDs: a transport never reveals that they exist),
``Forbidden``, ``Unauthorized``, ``Conflict``, ``ValidationError``, ``Unavailable``, or plain
``FreezerAPIError`` for a server failure.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["jobs", "actions", "sessions", "clients", "backups", "job_runs"]
KINDS: tuple[Kind, ...] = ("jobs", "actions", "sessions", "clients", "backups", "job_runs")
# The document key that holds each kind's ID.
ID_KEYS: Mapping[Kind, str] = {
    "jobs": "job_id",
    "actions": "action_id",
    "sessions": "session_id",
    "clients": "client_id",
    "backups": "backup_id",
    # Ours, not freezer-api's: the agent's run history (see BaseTransport.supports).
    "job_runs": "run_id",
}
JobEvent = Literal["start", "stop", "abort"]


def schedule_matches(schedule: Mapping[str, Any], expect: Mapping[str, Any]) -> bool:
    """Whether ``schedule`` holds every value of ``expect`` (``""``/None/missing: unset)."""

    def norm(value: Any) -> Any:
        return None if value is None or value == "" else value

    return all(norm(schedule.get(key)) == norm(value) for key, value in expect.items())


# None: everything; str: free text, matched case-insensitively against every value of the
# document; dict: freezer-api's structured form {"match": [{key: value}], "match_not": [...]}.
Search = str | Mapping[str, Any] | None


@dataclass(frozen=True)
class Context:
    """Who is asking: every transport call acts inside ``project_id`` on behalf of ``user_id``."""

    project_id: str
    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class Page(list[dict[str, Any]]):
    """One page of documents (a list, as python-freezerclient returns); ``has_more`` says
    whether a next page exists."""

    def __init__(self, docs: Iterable[dict[str, Any]] = (), has_more: bool = False) -> None:
        super().__init__(docs)
        self.has_more = has_more


class BaseTransport(abc.ABC):
    """Stores documents for a caller.  Documents go in and come out as plain dicts."""

    def supports(self, kind: Kind) -> bool:
        """Whether this backend stores ``kind`` at all.  freezer-api 19.0.0 has no run
        history, so the remote transport answers False for ``job_runs`` (and raises
        ``Unavailable`` if asked for them): callers choose another place, never a fake."""
        return kind in KINDS

    @abc.abstractmethod
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
        """Return up to ``limit`` documents of ``kind`` after skipping ``offset`` matches.

        Only ``ctx.project_id``'s documents, unless ``all_projects`` (the client has already
        checked the admin role; a transport may check again).  The order is stable between
        calls, so ``offset`` pages through everything exactly once.
        """

    @abc.abstractmethod
    def get(self, ctx: Context, kind: Kind, doc_id: str) -> dict[str, Any]:
        """Return the document, or raise ``NotFound`` (also when another project owns it)."""

    @abc.abstractmethod
    def create(self, ctx: Context, kind: Kind, doc: Mapping[str, Any]) -> str:
        """Validate and store a new document in ``ctx.project_id``; return its ID.

        Raises ``ValidationError`` (nothing is stored) or ``Conflict`` (the ID is taken).
        For clients, creating an existing client of the same project re-registers it.
        """

    @abc.abstractmethod
    def update(self, ctx: Context, kind: Kind, doc_id: str, patch: Mapping[str, Any]) -> None:
        """Replace the top-level keys given in ``patch``; the rest of the document stays.

        Raises ``NotFound`` or ``ValidationError`` (then nothing changes).
        """

    @abc.abstractmethod
    def delete(self, ctx: Context, kind: Kind, doc_id: str) -> None:
        """Delete the document, or raise ``NotFound``."""

    @abc.abstractmethod
    def job_event(self, ctx: Context, job_id: str, event: JobEvent) -> str:
        """Request ``start``/``stop``/``abort`` of a job, as freezer-api's job event does.

        Returns ``"success"`` or ``"<event> already requested"`` (nothing changed).
        """

    @abc.abstractmethod
    def job_update_if(
        self,
        ctx: Context,
        job_id: str,
        expect: Mapping[str, Any],
        patch: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        """Compare-and-set on the job's schedule state: set the ``job_schedule`` keys of
        ``patch`` only if every key of ``expect`` still has the given value there.

        ``""``, ``None`` and a missing key count as the same (unset) value.  Returns the new
        ``job_schedule``, or ``None`` (nothing written) when an expectation does not hold.
        Raises ``NotFound`` or ``ValidationError`` (a patch freezer-api's schema refuses).
        Atomic where the backend allows it (embedded: a conditional UPDATE); the remote
        transport can only read, check, then write (freezer-api 19.0.0 has no conditional
        update), which its docstring and docs/agent.md spell out.
        """

    @abc.abstractmethod
    def session_add_job(self, ctx: Context, session_id: str, job_id: str) -> None:
        """Put a job in a session; the job takes the session's schedule (freezer-api does)."""

    @abc.abstractmethod
    def session_remove_job(self, ctx: Context, session_id: str, job_id: str) -> None:
        """Take a job out of a session; the job's schedule becomes ``{"event": "stop"}``."""

    @abc.abstractmethod
    def session_action(
        self, ctx: Context, session_id: str, action: Literal["start", "end"], params: dict
    ) -> dict[str, Any]:
        """Run a session ``start`` ({job_id, current_tag}) or ``end`` ({job_id, result}).

        Returns ``{"result": "success" | "hold-off" | "out-of-sync", "session_tag": int}``.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release connections; the default holds none."""
