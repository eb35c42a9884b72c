"""freezer-api v2 document rules, and the server-side completion that precedes them.

The embedded transport must accept exactly the documents freezer-api 19.0.0 accepts, so that a
job that works embedded also works against a real freezer-api.  The facts here (enums, patterns,
required fields, which JSON Schema draft) were read from freezer-api 19.0.0
(``common/json_schemas.py``, ``common/elasticv2_utils.py``, ``db/sqlalchemy/api.py``); the
schemas are written out again rather than imported, because freezer-api is not a dependency.

Where freezer-api's schema lets a value through that its own code then crashes on (HTTP 500: a
``job_actions`` that is not a list, a ``freezer_action`` that is not an object, a non-integer
``max_retries`` hitting an INTEGER column), we reject it with a field error instead: the verdict
is the same (the document is refused), only the message is better.

Each ``new_*`` / ``*_patch`` function returns a completed deep copy of the document (the fields
freezer-api fills in server-side are filled in) or raises :class:`ValidationError` naming every
bad field by its document path.  Nothing here touches a database.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from freezer_ui.api.exceptions import ValidationError

SUPPORTED_ACTIONS = ("backup", "restore", "info", "admin", "exec")
SUPPORTED_MODES = (
    "fs",
    "mongo",
    "mysql",
    "sqlserver",
    "cinder",
    "glance",
    "cindernative",
    "nova",
)
SUPPORTED_STORAGES = ("local", "swift", "ssh", "s3", "ftp", "ftps")
SUPPORTED_ENGINES = ("tar", "rsync", "rsyncv2", "nova", "osbrick", "glance")
BACKUP_STATUSES = ("creating", "available", "error", "deleting", "deleted")
# A backup in these states may not have reached storage yet, so it needs no container/hostname.
BACKUP_STATUSES_WITHOUT_LOCATION = ("creating", "error", "deleting")

JOB_EVENTS = ("", "stop", "start", "abort", "remove")
JOB_STATUSES = ("", "completed", "stop", "scheduled", "running", "aborting", "removed")
JOB_RESULTS = ("", "success", "fail", "aborted")

SCHEDULE_INTERVAL_UNITS = ("weeks", "days", "hours", "minutes", "seconds")

# ISO 8601 date-time with mandatory seconds; fraction and zone optional.
_ISO_DATE = r"-?(?:[1-9][0-9]*)?[0-9]{4}-(?:1[0-2]|0[1-9])-(?:3[01]|0[1-9]|[12][0-9])"
_ISO_TIME = r"(?:2[0-3]|[01][0-9]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
_ISO_ZONE = r"(?:Z|[+-](?:2[0-3]|[01][0-9]):[0-5][0-9])?"
ISO_DATETIME_PATTERN = rf"^{_ISO_DATE}T{_ISO_TIME}{_ISO_ZONE}$"
SCHEDULE_INTERVAL_PATTERN = r"^(?:continuous|\d+ +(?:" + "|".join(SCHEDULE_INTERVAL_UNITS) + r"))$"
ID_PATTERN = r"^[\w-]+$"
_HOST_LABEL = r"(?:[a-zA-Z\d]|[a-zA-Z\d][a-zA-Z\d\-]{0,61}[a-zA-Z\d])"
# Deliberately unanchored: freezer-api matches hostnames this way, so any value holding one
# letter or digit passes.  Anchoring it would refuse clients freezer-api accepts.
HOSTNAME_PATTERN = rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*"
# "<project>_<hostname>" or a bare hostname.
CLIENT_ID_PATTERN = rf"^(?:[\w\-]+_)?{HOSTNAME_PATTERN}$"

_MESSAGES_BY_PATTERN = {
    ISO_DATETIME_PATTERN: "must be an ISO 8601 date and time with seconds, "
    "e.g. 2026-01-31T22:00:00",
    SCHEDULE_INTERVAL_PATTERN: "must be 'continuous' or a number and a unit ("
    + ", ".join(SCHEDULE_INTERVAL_UNITS)
    + "), e.g. '6 hours'",
    ID_PATTERN: "may only hold letters, digits, '_' and '-'",
    CLIENT_ID_PATTERN: "must be a hostname, optionally prefixed by '<project>_'",
    r"^\d{4}$": "must be a four-digit year",
}


def _string(pattern: str | None = None, *, nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"] if nullable else "string"}
    if pattern:
        schema["pattern"] = pattern
    return schema


def _enum(values: Iterable[str | None], *, nullable: bool = False) -> dict[str, Any]:
    allowed = list(values) + ([None] if nullable else [])
    return {"type": ["string", "null"] if nullable else "string", "enum": allowed}


def _enum_list(values: Iterable[str]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "enum": list(values)}}


_INTEGER = {"type": "integer"}
_BOOLEAN = {"type": "boolean"}

# The keys of a freezer_action that freezer-api checks; any other key is free (the agent's
# options travel there).  engine_name and storage are not schema-checked by freezer-api: the
# storage (and "engine") are checked against the job's client capabilities instead.
FREEZER_ACTION_PROPERTIES: dict[str, Any] = {
    "action": _enum(SUPPORTED_ACTIONS),
    "mode": _enum(SUPPORTED_MODES, nullable=True),
    "path_to_backup": _string(nullable=True),
    "backup_name": _string(nullable=True),
    "container": _string(nullable=True),
    "restore_abs_path": _string(nullable=True),
    "cindernative_freezer_only": {"type": ["boolean", "null"]},
}
FREEZER_ACTION = {"type": "object", "properties": FREEZER_ACTION_PROPERTIES}

SCHEDULE_PROPERTIES: dict[str, Any] = {
    "time_created": _INTEGER,
    "time_started": _INTEGER,
    "time_ended": _INTEGER,
    "event": _enum(JOB_EVENTS),
    "status": _enum(JOB_STATUSES),
    "result": _enum(JOB_RESULTS),
    "schedule_date": _string(ISO_DATETIME_PATTERN),
    "schedule_interval": _string(SCHEDULE_INTERVAL_PATTERN),
    "schedule_start_date": _string(ISO_DATETIME_PATTERN),
    "schedule_end_date": _string(ISO_DATETIME_PATTERN),
    "schedule_year": _string(r"^\d{4}$"),
    # The cron-like fields are free strings for freezer-api (APScheduler parses them later).
    **{
        f"schedule_{unit}": _string()
        for unit in ("month", "day", "week", "day_of_week", "hour", "minute", "second")
    },
    "current_pid": _INTEGER,
}
SCHEDULE = {"type": "object", "properties": SCHEDULE_PROPERTIES, "additionalProperties": False}

JOB_ACTION = {
    "type": "object",
    "properties": {
        "freezer_action": FREEZER_ACTION,
        "max_retries": _INTEGER,
        "max_retries_interval": _INTEGER,
        "mandatory": _BOOLEAN,
    },
}

_JOB_PROPERTIES: dict[str, Any] = {
    "job_actions": {"type": "array", "items": JOB_ACTION},
    "job_schedule": SCHEDULE,
    "job_id": _string(ID_PATTERN),
    "client_id": _string(CLIENT_ID_PATTERN),
    "session_id": {"type": ["string", "null"], "pattern": r"^[\w-]*$"},
    "session_tag": _INTEGER,
    "session_name": _string(nullable=True),
    "user_id": _string(ID_PATTERN),
    "project_id": _string(ID_PATTERN),
    "description": _string(nullable=True),
    "_version": _INTEGER,
    "action_defaults": FREEZER_ACTION,
}
JOB = {
    "type": "object",
    "properties": {
        **_JOB_PROPERTIES,
        "user_credentials": {
            "type": "object",
            "properties": {"trust_id": _string(), "trustor_user_id": _string(ID_PATTERN)},
            "required": ["trust_id", "trustor_user_id"],
        },
    },
    # Unlike every other kind, a job refuses unknown top-level keys.
    "additionalProperties": False,
    "required": ["job_actions", "job_schedule", "job_id", "client_id", "user_id"],
}
JOB_PATCH = {"type": "object", "properties": _JOB_PROPERTIES, "additionalProperties": False}

# An action document carries the freezer_action keys at its top level too (freezer-api merges
# both property sets).  freezer-api does not check the nested freezer_action's values here (a
# job checks them), but it stores freezer_action.action in a NOT NULL column, reads the object
# with .keys(), and max_retries* land in INTEGER columns: all refused by the server one way or
# another, so refused here with a field error.
_ACTION_PROPERTIES: dict[str, Any] = {
    **FREEZER_ACTION_PROPERTIES,
    "action_id": _string(ID_PATTERN),
    "user_id": _string(ID_PATTERN),
    "project_id": _string(ID_PATTERN),
    "freezer_action": {"type": "object", "required": ["action"]},
    "max_retries": _INTEGER,
    "max_retries_interval": _INTEGER,
}
ACTION = {
    "type": "object",
    "properties": _ACTION_PROPERTIES,
    "required": ["action_id", "user_id", "freezer_action"],
}
ACTION_PATCH = {"type": "object", "properties": _ACTION_PROPERTIES}

_SESSION_PROPERTIES: dict[str, Any] = {
    "schedule": SCHEDULE,
    "session_id": _string(ID_PATTERN),
    "user_id": _string(ID_PATTERN),
    "project_id": _string(ID_PATTERN),
    "session_tag": _INTEGER,
    "time_started": _INTEGER,
    "time_ended": _INTEGER,
}
SESSION = {
    "type": "object",
    "properties": _SESSION_PROPERTIES,
    "required": ["session_id", "session_tag", "user_id", "schedule"],
}
SESSION_PATCH = {"type": "object", "properties": _SESSION_PROPERTIES}

CLIENT = {
    "type": "object",
    "properties": {
        "client": {
            "type": "object",
            "properties": {
                "client_id": _string(CLIENT_ID_PATTERN),
                "hostname": _string(HOSTNAME_PATTERN),
                "description": _string(),
                "uuid": _string(),
                "supported_actions": _enum_list(SUPPORTED_ACTIONS),
                "supported_modes": _enum_list(SUPPORTED_MODES),
                "supported_storages": _enum_list(SUPPORTED_STORAGES),
                "supported_engines": _enum_list(SUPPORTED_ENGINES),
                "is_central": _BOOLEAN,
            },
            "required": ["client_id"],
        },
        "user_id": _string(ID_PATTERN),
        "project_id": _string(ID_PATTERN),
    },
    "required": ["client", "user_id"],
}

_NON_EMPTY = {"type": "string", "minLength": 1}
BACKUP = {
    "type": "object",
    "properties": {
        "container": {"type": ["string", "null"], "minLength": 1},
        "hostname": {"type": ["string", "null"], "minLength": 1},
        "backup_name": _NON_EMPTY,
        "status": _enum(BACKUP_STATUSES),
    },
    "required": ["backup_name"],
    # A backup that is (or was) stored somewhere must say where.
    "if": {"properties": {"status": {"not": {"enum": list(BACKUP_STATUSES_WITHOUT_LOCATION)}}}},
    "then": {
        "required": ["container", "hostname"],
        "properties": {"container": _NON_EMPTY, "hostname": _NON_EMPTY},
    },
}
BACKUP_PATCH = {
    "type": "object",
    "properties": {"backup_metadata": {"type": "object"}, "status": _enum(BACKUP_STATUSES)},
}

# Run history (embedded kind ``job_runs``; freezer-api 19.0.0 has no such kind, so these rules
# are ours).  A run belongs to a job of the same project; the agent creates it when it claims the
# job, updates its progress while it works and finalises it.
JOB_RUN_STATUSES = ("running", "success", "fail", "aborted", "interrupted")
_EPOCH = {"type": ["integer", "null"]}
_NUMBER = {"type": ["number", "null"]}
JOB_RUN_PROGRESS = {
    "type": "object",
    "properties": {
        "bytes_done": _NUMBER,
        "bytes_total": _NUMBER,
        "files_done": _NUMBER,
        "files_total": _NUMBER,
        "rate": _NUMBER,
        "eta": _NUMBER,
        "percent": _NUMBER,
        "phase": {"type": "string"},
    },
}
_JOB_RUN_FIELDS: dict[str, Any] = {
    "status": _enum(JOB_RUN_STATUSES),
    "started": _EPOCH,
    "ended": _EPOCH,
    "duration": _NUMBER,
    "progress": JOB_RUN_PROGRESS,
    "actions": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "result": {"type": "string"},
                "summary": {"type": "object"},
            },
            "required": ["name", "result"],
        },
    },
    "log": {"type": "array", "items": {"type": "string"}},
    "summary": {"type": "object"},
    "reason": {"type": "string"},
}
JOB_RUN = {
    "type": "object",
    "properties": {
        "run_id": _string(ID_PATTERN),
        "job_id": {**_string(ID_PATTERN), "minLength": 1},
        "client_id": {"type": "string"},
        "project_id": _string(ID_PATTERN),
        "user_id": {"type": "string"},
        **_JOB_RUN_FIELDS,
    },
    "required": ["run_id", "job_id", "status"],
    "additionalProperties": False,
}
JOB_RUN_PATCH = {
    "type": "object",
    "properties": _JOB_RUN_FIELDS,
    "additionalProperties": False,
}

# freezer-api validates backups with draft 7 (it needs if/then) and the rest with draft 4; the
# drafts differ on whether 1.0 is an integer, so the same drafts give the same verdicts.
_VALIDATORS = {
    "job": jsonschema.Draft4Validator(JOB),
    "job_patch": jsonschema.Draft4Validator(JOB_PATCH),
    "action": jsonschema.Draft4Validator(ACTION),
    "action_patch": jsonschema.Draft4Validator(ACTION_PATCH),
    "session": jsonschema.Draft4Validator(SESSION),
    "session_patch": jsonschema.Draft4Validator(SESSION_PATCH),
    "client": jsonschema.Draft4Validator(CLIENT),
    "backup": jsonschema.Draft7Validator(BACKUP),
    "backup_patch": jsonschema.Draft4Validator(BACKUP_PATCH),
    "job_run": jsonschema.Draft4Validator(JOB_RUN),
    "job_run_patch": jsonschema.Draft4Validator(JOB_RUN_PATCH),
}


def _join(path: Iterable[Any]) -> str:
    return ".".join(str(part) for part in path)


def _explain(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """Turn one jsonschema error into (document path, human message) pairs."""
    parent = list(error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [(_join([*parent, name]), "this field is required") for name in missing]
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = sorted(name for name in error.instance if name not in known)
        return [(_join([*parent, name]), "unknown field") for name in extra]
    path = _join(parent)
    if kind == "enum":
        allowed = ", ".join("null" if v is None else repr(v) for v in error.validator_value)
        return [(path, f"must be one of {allowed}")]
    if kind == "pattern":
        return [(path, _MESSAGES_BY_PATTERN.get(error.validator_value, "has an invalid format"))]
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return [(path, f"must be of type {wanted}")]
    if kind == "minLength":
        return [(path, "must not be empty")]
    return [(path, error.message)]


def check(kind: str, doc: Any) -> None:
    """Raise ValidationError listing every rule of ``kind`` that ``doc`` breaks."""
    errors: dict[str, str] = {}
    for error in _VALIDATORS[kind].iter_errors(doc):
        # "then" re-states rules already reported for the same field by "properties".
        for path, message in _explain(error):
            errors.setdefault(path, message)
    if errors:
        raise ValidationError(errors)


def _object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, Mapping):
        raise ValidationError({"": "the document must be a JSON object"})
    return copy.deepcopy(dict(doc))


def expand_action_defaults(doc: dict[str, Any]) -> None:
    """Apply ``action_defaults`` to every job action that leaves the key unset (or None)."""
    defaults = doc.pop("action_defaults", None)
    if defaults is None:
        return
    if not isinstance(defaults, dict):
        raise ValidationError({"action_defaults": "must be of type object"})
    actions = doc.get("job_actions")
    if not isinstance(actions, list):
        return  # the job schema reports it
    for index, job_action in enumerate(actions):
        action = job_action.get("freezer_action") if isinstance(job_action, dict) else None
        if not isinstance(action, dict):
            raise ValidationError(
                {f"job_actions.{index}.freezer_action": "required by action_defaults"}
            )
        for key, value in defaults.items():
            if action.get(key) is None:
                action[key] = value


def _check_inline_actions(job: dict[str, Any], *, project_id: str, user_id: str) -> None:
    # freezer-api stores every job action given without action_id as an action of its own
    # before it looks at the job, so each must also pass the action rules.
    errors: dict[str, str] = {}
    actions = job.get("job_actions")
    for index, entry in enumerate(actions if isinstance(actions, list) else []):
        if isinstance(entry, Mapping) and not entry.get("action_id"):
            try:
                new_action(entry, project_id=project_id, user_id=user_id)
            except ValidationError as error:
                for path, message in error.errors.items():
                    errors.setdefault(f"job_actions.{index}.{path}".rstrip("."), message)
    if errors:
        raise ValidationError(errors)


def _check_all(*checks: Any) -> None:
    """Run every check, then raise one ValidationError holding all their errors."""
    errors: dict[str, str] = {}
    for run in checks:
        try:
            run()
        except ValidationError as error:
            for path, message in error.errors.items():
                errors.setdefault(path, message)
    if errors:
        raise ValidationError(errors)


def new_job(doc: Any, *, project_id: str, user_id: str) -> dict[str, Any]:
    """A job as freezer-api stores it on create: owner set, ID chosen, creation time stamped."""
    job = _object(doc)
    expand_action_defaults(job)
    schedule = job.setdefault("job_schedule", {})
    if isinstance(schedule, dict):
        schedule.update(time_created=int(time.time()), time_started=-1, time_ended=-1)
    job.update(user_id=user_id, project_id=project_id, job_id=job.get("job_id") or uuid.uuid4().hex)
    _check_all(
        lambda: check("job", job),
        lambda: _check_inline_actions(job, project_id=project_id, user_id=user_id),
    )
    job.pop("_version", None)
    return job


def job_patch(patch: Any, *, project_id: str = "project", user_id: str = "user") -> dict[str, Any]:
    """A job patch: owner and ID cannot change, so they are dropped before the rules apply."""
    patch = _object(patch)
    expand_action_defaults(patch)
    for key in ("user_id", "job_id", "user_credentials"):
        patch.pop(key, None)
    _check_all(
        lambda: check("job_patch", patch),
        lambda: _check_inline_actions(patch, project_id=project_id, user_id=user_id),
    )
    patch.pop("_version", None)
    return patch


def replaced_job(doc: Any, *, project_id: str, user_id: str, job_id: str) -> dict[str, Any]:
    """A whole job written over an existing one (what job events do)."""
    job = _object(doc)
    job.update(user_id=user_id, project_id=project_id, job_id=job_id)
    check("job", job)
    return job


def new_action(doc: Any, *, project_id: str, user_id: str) -> dict[str, Any]:
    action = _object(doc)
    action.update(
        user_id=user_id,
        project_id=project_id,
        action_id=action.get("action_id") or uuid.uuid4().hex,
    )
    check("action", action)
    return action


def action_patch(patch: Any) -> dict[str, Any]:
    patch = _object(patch)
    for key in ("user_id", "action_id"):
        patch.pop(key, None)
    check("action_patch", patch)
    return patch


def new_session(doc: Any, *, project_id: str, user_id: str, hold_off: int = 30) -> dict[str, Any]:
    """A session as freezer-api creates it: always a fresh ID, tag 0 unless given, active."""
    session = _object(doc)
    session.update(
        user_id=user_id,
        project_id=project_id,
        session_id=uuid.uuid4().hex,
        session_tag=session.get("session_tag", 0),
        status="active",
        last_start="",
        jobs={},
    )
    session.setdefault("hold_off", hold_off)
    check("session", session)
    return session


def session_patch(patch: Any) -> dict[str, Any]:
    patch = _object(patch)
    for key in ("user_id", "session_id"):
        patch.pop(key, None)
    check("session_patch", patch)
    return patch


def new_client(info: Any, *, project_id: str, user_id: str) -> dict[str, Any]:
    """A client registration: freezer-api wraps the client info under ``client``."""
    client = _object(info)
    client.setdefault("uuid", uuid.uuid4().hex)
    doc = {"client": client, "user_id": user_id, "project_id": project_id}
    check("client", doc)
    return doc


def new_backup(metadata: Any, *, project_id: str, user_id: str) -> dict[str, Any]:
    """A backup record: ``status`` moves out of the metadata, default ``available``."""
    data = _object(metadata)
    check("backup", data)
    status = data.pop("status", "available")
    return {
        "backup_id": uuid.uuid4().hex,
        "user_id": user_id,
        "project_id": project_id,
        "status": status,
        "backup_metadata": data,
    }


def backup_patch(patch: Any) -> dict[str, Any]:
    patch = _object(patch)
    for key in ("user_id", "backup_id", "project_id"):
        patch.pop(key, None)
    check("backup_patch", patch)
    return patch


def new_job_run(doc: Any, *, project_id: str, user_id: str) -> dict[str, Any]:
    """A run record: owner set, ID kept if given (the agent picks it, so a spooled final
    report can create the run if the first write never arrived), status ``running`` by default."""
    run = _object(doc)
    run.update(user_id=user_id, project_id=project_id, run_id=run.get("run_id") or uuid.uuid4().hex)
    run.setdefault("status", "running")
    check("job_run", run)
    return run


def job_run_patch(patch: Any) -> dict[str, Any]:
    """A run patch: which job, client and owner a run belongs to never changes."""
    patch = _object(patch)
    for key in ("user_id", "project_id", "run_id"):
        patch.pop(key, None)
    check("job_run_patch", patch)
    return patch


def check_client_capabilities(freezer_actions: Iterable[dict[str, Any]], client: dict) -> None:
    """Refuse actions the job's client said it cannot run (freezer-api answers 422 here).

    ``client`` is the stored client document (``{"client": {...}}``).  freezer-api looks up the
    keys ``action``, ``mode``, ``storage`` and ``engine`` (not ``engine_name``) in the client's
    ``supported_<key>s`` lists.
    """
    info = client.get("client", {})
    defaults = {
        "action": SUPPORTED_ACTIONS,
        "mode": SUPPORTED_MODES,
        "storage": SUPPORTED_STORAGES,
        "engine": SUPPORTED_ENGINES,
    }
    errors: dict[str, str] = {}
    for index, action in enumerate(freezer_actions):
        if not action:
            continue
        for capability, fallback in defaults.items():
            option = action.get(capability)
            supported = info.get(f"supported_{capability}s", fallback)
            if option and option not in supported:
                errors[f"job_actions.{index}.freezer_action.{capability}"] = (
                    f"client {info.get('client_id')} does not support {capability} {option!r}"
                )
    if errors:
        raise ValidationError(errors)
