"""Read-only views of freezer-api v2 documents, as the panels use them.

Each wraps a document and gives attribute access to the fields of docs/architecture.md
section 3; any other top-level key of the document is reachable as an attribute too (Horizon
tables read columns with ``getattr``).  ``to_dict()`` returns a copy of the document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar


class Resource:
    id_key: ClassVar[str]

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self._doc = copy.deepcopy(dict(doc))

    @property
    def id(self) -> str:
        return self._doc.get(self.id_key, "")

    @property
    def project_id(self) -> str:
        return self._doc.get("project_id", "")

    @property
    def user_id(self) -> str:
        return self._doc.get("user_id", "")

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._doc)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not attributes: fall back to the document's keys.
        if name.startswith("_") or name not in self.__dict__.get("_doc", {}):
            raise AttributeError(name)
        return self._doc[name]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._doc == self._doc  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


class Job(Resource):
    id_key = "job_id"

    @property
    def description(self) -> str:
        return self._doc.get("description") or ""

    @property
    def client_id(self) -> str:
        return self._doc.get("client_id") or ""

    @property
    def session_id(self) -> str:
        return self._doc.get("session_id") or ""

    @property
    def job_schedule(self) -> dict[str, Any]:
        return copy.deepcopy(self._doc.get("job_schedule") or {})

    def _schedule(self, key: str) -> Any:
        return (self._doc.get("job_schedule") or {}).get(key, "")

    @property
    def status(self) -> str:
        return self._schedule("status")

    @property
    def result(self) -> str:
        return self._schedule("result")

    @property
    def event(self) -> str:
        return self._schedule("event")

    @property
    def schedule_interval(self) -> str:
        return self._schedule("schedule_interval")

    @property
    def schedule_start_date(self) -> str:
        return self._schedule("schedule_start_date")

    @property
    def schedule_end_date(self) -> str:
        return self._schedule("schedule_end_date")

    @property
    def actions(self) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(entry.get("freezer_action") or {})
            for entry in self._doc.get("job_actions") or []
        ]

    def _main_action(self) -> dict[str, Any]:
        # The backup action says what the job protects; a restore-only job shows its first.
        actions = self.actions
        for action in actions:
            if action.get("action") == "backup":
                return action
        return actions[0] if actions else {}

    @property
    def engine_name(self) -> str:
        return self._main_action().get("engine_name") or ""

    @property
    def storage(self) -> str:
        return self._main_action().get("storage") or ""

    @property
    def backup_name(self) -> str:
        return self._main_action().get("backup_name") or ""

    @property
    def path_to_backup(self) -> str:
        return self._main_action().get("path_to_backup") or ""


class Action(Resource):
    id_key = "action_id"

    @property
    def freezer_action(self) -> dict[str, Any]:
        return copy.deepcopy(self._doc.get("freezer_action") or {})

    @property
    def max_retries(self) -> int | None:
        return self._doc.get("max_retries")

    @property
    def max_retries_interval(self) -> int | None:
        return self._doc.get("max_retries_interval")

    @property
    def mandatory(self) -> bool:
        return bool(self._doc.get("mandatory", False))


class Session(Resource):
    id_key = "session_id"

    @property
    def description(self) -> str:
        return self._doc.get("description") or ""

    @property
    def status(self) -> str:
        return self._doc.get("status") or ""

    @property
    def result(self) -> str:
        return self._doc.get("result") or ""

    @property
    def schedule(self) -> dict[str, Any]:
        return copy.deepcopy(self._doc.get("schedule") or {})

    @property
    def jobs(self) -> dict[str, Any]:
        # freezer-api returns no "jobs" (or a list) for a session that never had one.
        jobs = self._doc.get("jobs")
        return copy.deepcopy(jobs) if isinstance(jobs, dict) else {}


class Client(Resource):
    """A registered agent host; freezer-api nests its fields under ``client``."""

    @property
    def _info(self) -> dict[str, Any]:
        return self._doc.get("client") or {}

    @property
    def id(self) -> str:
        return self._info.get("client_id", "")

    def __getattr__(self, name: str) -> Any:
        info = self.__dict__.get("_doc", {}).get("client") or {}
        if not name.startswith("_") and name in info:
            return copy.deepcopy(info[name])
        return super().__getattr__(name)

    @property
    def uuid(self) -> str:
        return self._info.get("uuid", "")

    @property
    def hostname(self) -> str:
        return self._info.get("hostname") or ""

    @property
    def description(self) -> str:
        return self._info.get("description") or ""

    @property
    def is_central(self) -> bool:
        return bool(self._info.get("is_central", False))

    @property
    def supported_actions(self) -> list[str]:
        return list(self._info.get("supported_actions") or [])

    @property
    def supported_modes(self) -> list[str]:
        return list(self._info.get("supported_modes") or [])

    @property
    def supported_storages(self) -> list[str]:
        return list(self._info.get("supported_storages") or [])

    @property
    def supported_engines(self) -> list[str]:
        return list(self._info.get("supported_engines") or [])


class Backup(Resource):
    """A backup record; its fields live in ``backup_metadata`` except the status."""

    id_key = "backup_id"

    @property
    def _meta(self) -> dict[str, Any]:
        return self._doc.get("backup_metadata") or {}

    def _first(self, *keys: str) -> Any:
        # Our agent's names first, then the upstream Freezer agent's for older records.
        for key in keys:
            if self._meta.get(key) is not None:
                return self._meta[key]
        return None

    @property
    def status(self) -> str:
        return self._doc.get("status") or ""

    @property
    def backup_name(self) -> str:
        return self._meta.get("backup_name") or ""

    @property
    def hostname(self) -> str:
        return self._meta.get("hostname") or ""

    @property
    def engine_name(self) -> str:
        return self._meta.get("engine_name") or ""

    @property
    def storage(self) -> str:
        return self._meta.get("storage") or ""

    @property
    def container(self) -> str:
        return self._meta.get("container") or ""

    @property
    def time_stamp(self) -> int:
        try:
            return int(self._meta.get("time_stamp") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def level(self) -> int | None:
        return self._first("level", "curr_backup_level")

    @property
    def size(self) -> int | None:
        return self._first("size", "backup_size_uncompressed")

    @property
    def stored_bytes(self) -> int | None:
        return self._first("stored_bytes", "backup_size_compressed")

    @property
    def new_bytes(self) -> int | None:
        return self._meta.get("new_bytes")

    @property
    def files(self) -> int | None:
        return self._meta.get("files")

    @property
    def generation_id(self) -> str:
        return self._meta.get("generation_id") or ""


class JobRun(Resource):
    """One run of a job by an agent (embedded ``job_runs``): status, times, live progress,
    per-action outcomes, the log tail and, for a restore, what was restored."""

    id_key = "run_id"
    PROGRESS_KEYS: ClassVar[tuple[str, ...]] = (
        "bytes_done",
        "bytes_total",
        "files_done",
        "files_total",
        "rate",
        "eta",
        "percent",
        "phase",
    )

    @property
    def job_id(self) -> str:
        return self._doc.get("job_id") or ""

    @property
    def client_id(self) -> str:
        return self._doc.get("client_id") or ""

    @property
    def status(self) -> str:
        """``running``, ``success``, ``fail``, ``aborted`` or ``interrupted``."""
        return self._doc.get("status") or ""

    @property
    def started(self) -> int | None:
        return self._doc.get("started")

    @property
    def ended(self) -> int | None:
        return self._doc.get("ended")

    @property
    def duration(self) -> float | None:
        if self._doc.get("duration") is not None:
            return self._doc["duration"]
        started, ended = self.started, self.ended
        return ended - started if started is not None and ended is not None else None

    @property
    def progress(self) -> dict[str, Any]:
        """Every key of :attr:`PROGRESS_KEYS`, None where unknown."""
        stored = self._doc.get("progress") or {}
        return {key: copy.deepcopy(stored.get(key)) for key in self.PROGRESS_KEYS}

    @property
    def actions(self) -> list[dict[str, Any]]:
        """Per action: ``name``, ``result``, ``summary`` (dict), and ``error`` if any."""
        return [
            {"name": "", "result": "", "summary": {}, **copy.deepcopy(entry)}
            for entry in self._doc.get("actions") or []
        ]

    @property
    def log(self) -> list[str]:
        return list(self._doc.get("log") or [])

    @property
    def summary(self) -> dict[str, Any]:
        """For a restore: ``files``, ``bytes``, ``duration``, ``verified``, ``target``."""
        return copy.deepcopy(self._doc.get("summary") or {})

    @property
    def reason(self) -> str:
        return self._doc.get("reason") or ""

    @property
    def running(self) -> bool:
        return self.status == "running"
