"""The agent's local state dir: run history, in-flight runs, spool, key files.

Layout under ``state_dir`` (docs/agent.md)::

    runs/<job_id>.json      remote mode only: the job's last N runs, newest last, with logs
    current/<job_id>.json   the run in progress (run id, pid, backup record, live progress)
    spool/                  reports waiting for the API (store.Spool)
    keys/                   passphrase files named by ``passphrase_ref``

In embedded mode the run history is the API's ``job_runs`` kind.  freezer-api has no such kind
and its job document has no room for one (its schema refuses unknown keys in the job and in
``job_schedule``), so in remote mode the history lives here and the job document carries what
freezer-api defines (status, result, start/end times, ``current_pid``).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

_SAFE_ID = re.compile(r"^[\w-]+$")


def _atomic_write(path: str, doc: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _read(path: str, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


class LocalState:
    def __init__(self, state_dir: str, history_size: int = 20) -> None:
        self.root = os.path.abspath(state_dir)
        self.history_size = history_size
        for sub in ("runs", "current", "spool", "keys"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        # Key files must not be world-readable; tighten if an operator created the dir.
        os.chmod(os.path.join(self.root, "keys"), 0o700)

    @property
    def spool_dir(self) -> str:
        return os.path.join(self.root, "spool")

    @property
    def key_dir(self) -> str:
        return os.path.join(self.root, "keys")

    def _path(self, sub: str, job_id: str) -> str:
        if not _SAFE_ID.match(job_id):
            # Job ids come from the API: never let one pick a path.
            raise ValueError(f"unsafe job id {job_id!r}")
        return os.path.join(self.root, sub, f"{job_id}.json")

    # run history
    def runs(self, job_id: str) -> list[dict[str, Any]]:
        return _read(self._path("runs", job_id), [])

    def add_run(self, job_id: str, run: dict[str, Any]) -> None:
        runs = [r for r in self.runs(job_id) if r.get("run_id") != run.get("run_id")]
        runs.append(run)
        _atomic_write(self._path("runs", job_id), runs[-self.history_size :])

    # in-flight runs
    def current(self, job_id: str) -> dict[str, Any] | None:
        return _read(self._path("current", job_id), None)

    def all_current(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name in os.listdir(os.path.join(self.root, "current")):
            if name.endswith(".json"):
                doc = _read(os.path.join(self.root, "current", name), None)
                if doc:
                    out[name[: -len(".json")]] = doc
        return out

    def set_current(self, job_id: str, doc: dict[str, Any]) -> None:
        _atomic_write(self._path("current", job_id), doc)

    def clear_current(self, job_id: str) -> None:
        try:
            os.unlink(self._path("current", job_id))
        except FileNotFoundError:
            pass


def read_runs(state_dir: str, job_id: str) -> list[dict[str, Any]]:
    """A job's run history (newest last), for the dashboard in embedded mode."""
    return _read(os.path.join(state_dir, "runs", f"{job_id}.json"), [])


def read_progress(state_dir: str, job_id: str) -> dict[str, Any] | None:
    """The live progress of the job's run in progress on this host, or None."""
    current = _read(os.path.join(state_dir, "current", f"{job_id}.json"), None)
    return (current or {}).get("progress")
