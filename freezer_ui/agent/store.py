"""The agent's view of the API: its jobs, atomic claims, reports, and a spool for outages.

Everything goes through :class:`freezer_ui.api.client.FreezerClient`, so the agent runs the
same against the embedded transport and a real freezer-api:

* **compare-and-set on a job's schedule** goes through the transport contract's
  ``job_update_if`` (:meth:`AgentStore.update_if`).  On the embedded transport it is one
  conditional ``UPDATE``: of two agents that both see a job due, exactly one moves it to
  ``running``.  freezer-api has no conditional update: on the remote transport it is
  read-check-write, and the guarantee comes from ownership instead (only the agent registered
  as the job's ``client_id`` runs it).  docs/agent.md states this limit.
* **a spool** (:class:`Spool`): final reports (job status/result, backup records) that could
  not be delivered because the API was unreachable are written to the state dir and delivered,
  in order, before anything else once the API answers again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Conflict, NotFound, Unavailable, ValidationError

Schedule = dict[str, Any]
# How many times a compare-and-set is retried when another writer keeps winning.
_CAS_ATTEMPTS = 50


class Spool:
    """An ordered on-disk queue of report operations (one JSON file each, written atomically)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def _names(self) -> list[str]:
        return sorted(n for n in os.listdir(self.directory) if n.endswith(".json"))

    def __len__(self) -> int:
        return len(self._names())

    def put(self, op: dict[str, Any]) -> None:
        # Time-ordered names keep delivery in the order the reports were made.
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        tmp = os.path.join(self.directory, "." + name)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(op, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.directory, name))

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for name in self._names():
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8") as f:
                    out.append((path, json.load(f)))
            except (OSError, ValueError):
                # A torn file can only come from a crash before os.replace: never delivered.
                os.unlink(path)
        return out


class AgentStore:
    """Jobs, backups and clients of one project as one agent sees them."""

    def __init__(self, client: FreezerClient, spool_dir: str) -> None:
        self.client = client
        self.spool = Spool(spool_dir)

    # ----------------------------------------------------------------- reads
    def my_jobs(self, client_id: str) -> list[dict[str, Any]]:
        """Every job of the project assigned to ``client_id`` (all pages)."""
        jobs: list[dict[str, Any]] = []
        search = {"match": [{"client_id": client_id}]}
        offset = 0
        while True:
            page = self.client.jobs.list(limit=100, offset=offset, search=search)
            jobs += [job for job in page if job.get("client_id") == client_id]
            if not page.has_more:
                return jobs
            offset += len(page)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.client.jobs.get(job_id)

    def job_backups(self, job_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.client.backups.list(
                limit=100, offset=offset, search={"match": [{"job_id": job_id}]}
            )
            out += [b for b in page if (b.get("backup_metadata") or {}).get("job_id") == job_id]
            if not page.has_more:
                return out
            offset += len(page)

    # ----------------------------------------------------------------- writes
    def register(self, info: dict[str, Any]) -> str:
        return self.client.clients.create(info)

    def update_if(
        self, job_id: str, expect: dict[str, Any], patch: dict[str, Any]
    ) -> Schedule | None:
        """Compare-and-set on the job's schedule (the transport's ``job_update_if``): the new
        schedule, or None when the job is no longer in the ``expect``-ed state."""
        return self.client.jobs.update_if(job_id, expect, patch)

    def report_schedule(self, job_id: str, fields: dict[str, Any], clear_events: set[str]) -> None:
        """Write a run's final schedule fields; clear a pending event in ``clear_events``.

        Conditional on the event as read: an event a user sends meanwhile (a new ``start``)
        makes the write fail and be redone from a fresh read, so it is never wiped out.
        """
        for _ in range(_CAS_ATTEMPTS):
            schedule = self.get_job(job_id).get("job_schedule") or {}
            event = schedule.get("event") or ""
            patch = dict(fields)
            if event in clear_events:
                patch["event"] = ""
            if self.update_if(job_id, {"event": event}, patch) is not None:
                return
        raise Conflict(f"job {job_id} keeps changing; gave up after {_CAS_ATTEMPTS} attempts")

    def create_run(self, run: dict[str, Any]) -> str:
        return self.client.job_runs.create(run)

    def update_run(self, run_id: str, patch: dict[str, Any]) -> None:
        self.client.job_runs.update(run_id, patch)

    def running_runs(self, job_id: str, client_id: str) -> list[dict[str, Any]]:
        """The job's run records still ``running`` for ``client_id`` (newest first)."""
        page = self.client.job_runs.list(
            limit=20,
            search={"match": [{"job_id": job_id}, {"client_id": client_id}, {"status": "running"}]},
        )
        return [
            r
            for r in page
            if r.get("job_id") == job_id
            and r.get("client_id") == client_id
            and r.get("status") == "running"
        ]

    def prune_runs(self, job_id: str, keep: int) -> int:
        """Delete the job's run records beyond the newest ``keep``; returns how many."""
        removed = kept = 0
        while True:
            page = self.client.job_runs.list(limit=100, offset=keep + kept, job_id=job_id)
            for run in page:
                if run.get("status") == "running":
                    kept += 1  # another agent's run in progress (never ours: runs are ended)
                    continue
                try:
                    self.client.job_runs.delete(run["run_id"])
                    removed += 1
                except NotFound:
                    pass
            if not page.has_more or not page:
                return removed

    def upsert_run(self, run: dict[str, Any]) -> None:
        """The final state of a run: an update of the record made at the claim, or a create
        when that one never arrived (the API was down) — the agent chose the run_id."""
        patch = {k: v for k, v in run.items() if k not in ("run_id", "job_id", "client_id")}
        try:
            self.update_run(run["run_id"], patch)
        except NotFound:
            self.create_run(run)

    def create_backup(self, metadata: dict[str, Any]) -> str:
        return self.client.backups.create(metadata)

    def update_backup(self, backup_id: str, patch: dict[str, Any]) -> None:
        self.client.backups.update(backup_id, patch)

    # ----------------------------------------------------------------- reports (spooled)
    def report(self, op: dict[str, Any]) -> bool:
        """Deliver a final report now, or spool it when the API is unreachable.

        Returns True when delivered.  Older spooled reports go first, so they keep their order.
        """
        if len(self.spool) and not self.flush():
            self.spool.put(op)
            return False
        try:
            self._deliver(op)
        except Unavailable:
            self.spool.put(op)
            return False
        return True

    def flush(self) -> bool:
        """Deliver spooled reports in order; False (and the rest kept) at the first outage."""
        for path, op in self.spool.items():
            try:
                self._deliver(op)
            except Unavailable:
                return False
            except NotFound:
                pass  # the job or backup was deleted meanwhile: nothing left to report to
            os.unlink(path)
        return True

    def _deliver(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "schedule":
            self.report_schedule(op["job_id"], op["set"], set(op.get("clear_events") or ()))
        elif kind == "backup":
            if op.get("backup_id"):
                self.update_backup(
                    op["backup_id"], {"status": op["status"], "backup_metadata": op["metadata"]}
                )
            else:
                self.create_backup({**op["metadata"], "status": op["status"]})
        elif kind == "session_end":
            try:
                self.client.sessions.end(
                    op["session_id"], op["job_id"], op["session_tag"], op["result"]
                )
            except ValidationError:
                pass  # the job left the session meanwhile: its round has nothing to close
        elif kind == "run":
            self.upsert_run(op["run"])
        elif kind == "delete_backup":
            try:
                self.client.backups.delete(op["backup_id"])
            except NotFound:
                pass
        else:
            raise ValueError(f"unknown spooled operation {kind!r}")
