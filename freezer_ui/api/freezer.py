"""The one door from the panels to the backup service (docs/architecture.md section 3).

Views, tables, forms and workflows call these ``noun_verb(request, ...)`` functions and nothing
else.  The project, user and roles always come from ``request.user``, never from a form.
Errors are those of :mod:`freezer_ui.api.exceptions`; views let Horizon classify them
(``exceptions.handle`` + ``freezer_ui/exceptions.py``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from freezer_ui import conf
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Unavailable, ValidationError
from freezer_ui.api.resources import Action, Backup, Client, Job, JobRun, Session
from freezer_ui.api.transports.base import BaseTransport, Search


def _roles(user: Any) -> list[str]:
    return [role["name"] if isinstance(role, dict) else str(role) for role in user.roles or []]


def _api_url(request: Any) -> str:
    url = conf.get("FREEZER_UI_API_URL")
    if url:
        return url
    from horizon import exceptions as horizon_exceptions
    from openstack_dashboard.api import base

    try:
        return base.url_for(request, "backup")
    except horizon_exceptions.ServiceCatalogException:
        raise Unavailable(
            "No freezer-api endpoint: FREEZER_UI_API_URL is not set and the Keystone catalog "
            "has no service of type 'backup'."
        ) from None


def _transport(request: Any) -> BaseTransport:
    mode = conf.get("FREEZER_UI_API_MODE")
    if mode == "embedded":
        from freezer_ui.api.transports.embedded import EmbeddedTransport

        return EmbeddedTransport()
    if mode == "remote":
        from freezer_ui.api.transports.remote import RemoteTransport

        user = request.user
        return RemoteTransport(
            auth_url=getattr(user, "endpoint", None) or settings.OPENSTACK_KEYSTONE_URL,
            token=user.token.id,
            project_id=user.project_id,
            endpoint=_api_url(request),
            insecure=bool(conf.get("FREEZER_UI_API_INSECURE")),
            cacert=conf.get("FREEZER_UI_API_CACERT"),
        )
    raise ImproperlyConfigured(
        f"FREEZER_UI_API_MODE must be one of {', '.join(conf.API_MODES)}, not {mode!r}"
    )


def freezerclient(request: Any) -> FreezerClient:
    """The client for the request's user and project: the only place a client is built."""
    user = request.user
    return FreezerClient(
        _transport(request), project_id=user.project_id, user_id=user.id, roles=_roles(user)
    )


# freezer_action keys naming a path on the agent's host, checked against the allowed roots.
PATH_KEYS = ("path_to_backup", "restore_abs_path")


def _check_paths(doc: Any, prefix: str = "") -> None:
    """Refuse paths outside FREEZER_UI_ALLOWED_ROOTS in a job or action document.

    An operator policy of ours, not a freezer-api rule: it is applied here, at the seam every
    panel goes through, for both transports (the agent checks again before it runs).
    """
    if not isinstance(doc, dict):
        return
    roots = conf.allowed_roots()
    actions = doc.get("job_actions")
    entries = enumerate(actions) if isinstance(actions, list) else [(None, doc)]
    errors = {}
    for index, entry in entries:
        action = entry.get("freezer_action") if isinstance(entry, dict) else None
        where = prefix if index is None else f"{prefix}job_actions.{index}."
        for key in PATH_KEYS:
            value = action.get(key) if isinstance(action, dict) else None
            if isinstance(value, str) and value and not conf.path_allowed(value, roots):
                errors[f"{where}freezer_action.{key}"] = (
                    "must be an absolute path inside " + ", ".join(roots)
                )
    if errors:
        raise ValidationError(errors)


def _page(manager: Any, wrap: type, limit: int, offset: int, search: Search, all_projects: bool):
    page = manager.list(limit=limit, offset=offset, search=search, all_projects=all_projects)
    return [wrap(doc) for doc in page], page.has_more


# ---------------------------------------------------------------- jobs
def job_list(
    request, *, limit=20, offset=0, search=None, all_projects=False
) -> tuple[list[Job], bool]:
    return _page(freezerclient(request).jobs, Job, limit, offset, search, all_projects)


def job_get(request, job_id) -> Job:
    return Job(freezerclient(request).jobs.get(job_id))


def job_create(request, doc: dict) -> str:
    _check_paths(doc)
    return freezerclient(request).jobs.create(doc)


def job_update(request, job_id, patch: dict) -> None:
    _check_paths(patch)
    freezerclient(request).jobs.update(job_id, patch)


def job_delete(request, job_id) -> None:
    freezerclient(request).jobs.delete(job_id)


def job_start(request, job_id) -> None:
    freezerclient(request).jobs.start(job_id)


def job_stop(request, job_id) -> None:
    freezerclient(request).jobs.stop(job_id)


def job_abort(request, job_id) -> None:
    freezerclient(request).jobs.abort(job_id)


# ---------------------------------------------------------------- actions
def action_list(
    request, *, limit=20, offset=0, search=None, all_projects=False
) -> tuple[list[Action], bool]:
    return _page(freezerclient(request).actions, Action, limit, offset, search, all_projects)


def action_get(request, action_id) -> Action:
    return Action(freezerclient(request).actions.get(action_id))


def action_create(request, doc: dict) -> str:
    _check_paths(doc)
    return freezerclient(request).actions.create(doc)


def action_update(request, action_id, patch: dict) -> None:
    _check_paths(patch)
    freezerclient(request).actions.update(action_id, patch)


def action_delete(request, action_id) -> None:
    freezerclient(request).actions.delete(action_id)


# ---------------------------------------------------------------- sessions
def session_list(
    request, *, limit=20, offset=0, search=None, all_projects=False
) -> tuple[list[Session], bool]:
    return _page(freezerclient(request).sessions, Session, limit, offset, search, all_projects)


def session_get(request, session_id) -> Session:
    return Session(freezerclient(request).sessions.get(session_id))


def session_create(request, doc: dict) -> str:
    return freezerclient(request).sessions.create(doc)


def session_update(request, session_id, patch: dict) -> None:
    freezerclient(request).sessions.update(session_id, patch)


def session_delete(request, session_id) -> None:
    freezerclient(request).sessions.delete(session_id)


def session_add_job(request, session_id, job_id) -> None:
    freezerclient(request).sessions.add_job(session_id, job_id)


def session_remove_job(request, session_id, job_id) -> None:
    freezerclient(request).sessions.remove_job(session_id, job_id)


def session_start(request, session_id, job_id, session_tag) -> dict[str, Any]:
    return freezerclient(request).sessions.start(session_id, job_id, session_tag)


# ---------------------------------------------------------------- clients
def client_list(
    request, *, limit=20, offset=0, search=None, all_projects=False
) -> tuple[list[Client], bool]:
    return _page(freezerclient(request).clients, Client, limit, offset, search, all_projects)


def client_create(request, info: dict) -> str:
    """Register (or re-register) an agent host; returns its client_id."""
    return freezerclient(request).clients.create(info)


def client_get(request, client_id) -> Client:
    return Client(freezerclient(request).clients.get(client_id))


def client_delete(request, client_id) -> None:
    freezerclient(request).clients.delete(client_id)


# ---------------------------------------------------------------- backups
def backup_list(
    request, *, limit=20, offset=0, search=None, all_projects=False
) -> tuple[list[Backup], bool]:
    return _page(freezerclient(request).backups, Backup, limit, offset, search, all_projects)


def backup_get(request, backup_id) -> Backup:
    return Backup(freezerclient(request).backups.get(backup_id))


def backup_delete(request, backup_id) -> None:
    freezerclient(request).backups.delete(backup_id)


# ---------------------------------------------------------------- job runs
def job_run_list(
    request, job_id=None, *, limit=20, offset=0, all_projects=False
) -> tuple[list[JobRun], bool]:
    """Runs newest first (only ``job_id``'s when given), and whether more exist.

    Raises ``Unavailable`` in remote mode: freezer-api 19.0.0 stores no run history
    (docs/agent.md says where the agent keeps it then).
    """
    page = freezerclient(request).job_runs.list(
        limit=limit, offset=offset, all_projects=all_projects, job_id=job_id
    )
    return [JobRun(doc) for doc in page], page.has_more


def job_run_get(request, run_id) -> JobRun:
    return JobRun(freezerclient(request).job_runs.get(run_id))
