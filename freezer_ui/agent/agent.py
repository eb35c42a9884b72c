"""The job runtime: poll the jobs of this client, run the due ones, report what happened.

One :class:`Agent` serves one registered client (``client_id``) in one project, through a
:class:`freezer_ui.api.client.FreezerClient` on either transport.  A poll (:meth:`Agent.poll`)

1. delivers spooled reports (the API was unreachable earlier),
2. lists the client's jobs and handles their events (``stop``, ``abort``, ``start``),
3. claims each due job with a compare-and-set of its schedule (``status`` -> ``running``: of two
   agents that both see the job due, exactly one wins; the other skips it),
4. runs its ``job_actions`` in order with our engines, then writes ``status``/``result``/
   ``time_ended`` back (spooled if the API is gone) and appends the run to the local history.

Runs are sequential inside one agent: a host backing up several trees in parallel would only
compete with itself for disk and CPU.  Several agents (processes, threads or hosts) may serve
the same client; the claim keeps each run single.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from freezer_ui.agent import schedule as sched
from freezer_ui.agent.secrets import PASSPHRASE_ENV, SecretError, resolve_passphrase
from freezer_ui.agent.state import LocalState
from freezer_ui.agent.store import AgentStore
from freezer_ui.api import schemas
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import FreezerAPIError, NotFound, Unavailable, ValidationError
from freezer_ui.progress import Progress, ProgressSnapshot

LOG = logging.getLogger("freezer_ui.agent")

SUPPORTED_ACTIONS = ("backup", "restore", "admin", "info", "exec")
SUPPORTED_MODES = ("fs",)
# Lines of a run's log kept in the history and in the backup record.
LOG_LINES = 200
RECORD_LOG_LINES = 50


class Cancelled(Exception):
    """The job was aborted: raised from the progress callback inside the engine."""


class Refused(Exception):
    """This client cannot run the action at all (unsupported engine, bad options): no retry."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def default_client_id(hostname: str | None = None) -> str:
    """freezer-scheduler's default: the host name (freezer-api accepts ``<project>_<host>``)."""
    return (hostname or socket.gethostname()).split(".")[0]


@dataclass
class AgentConfig:
    state_dir: str
    client_id: str = ""
    hostname: str = field(default_factory=socket.gethostname)
    poll_interval: float = 10.0
    # Live progress and abort checks happen at most this often while a run works.
    progress_interval: float = 1.0
    history_size: int = 20
    key_dir: str | None = None
    # Cap of the wait between polls while the API is unreachable.
    backoff_max: float = 300.0
    description: str = "freezer-ui-agent"
    # Host paths a job may read from, restore into or keep a local repository in.  The panels
    # check FREEZER_UI_ALLOWED_ROOTS too, but a job can reach the agent through freezer-api
    # directly, so the agent, which does the I/O, is the check that matters.
    allowed_roots: tuple[str, ...] = ("/",)
    # The project served (set by the multi-project agent; a single agent uses its client's).
    project_id: str = ""
    # Whether FREEZER_UI_PASSPHRASE may serve jobs without a reference.  Off when one process
    # serves several projects: one environment secret must not open every tenant's backups.
    shared_passphrase: bool = True
    # exec actions run tenant-supplied commands on this host: only when the operator says so.
    allow_exec: bool = False
    exec_timeout: float = 3600.0
    # (storage name, base URL) of the remote storages jobs may use, e.g. ("swift",
    # "swift://freezer-ui"): a job names only a relative container under <base>/<project id>.
    remote_storages: tuple[tuple[str, str], ...] = ()
    # Storages on which upstream Freezer records name a container of the project's own
    # account, read with the agent's credentials (only "swift"; single-project agents only):
    # see freezer_ui/agent/legacy_action.py.
    legacy_storages: tuple[str, ...] = ()


class RunLog:
    """A run's log: kept in memory for the history, mirrored to Python logging."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.lines: list[str] = []

    def __call__(self, message: str, level: int = logging.INFO) -> None:
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self.lines.append(f"{stamp} {logging.getLevelName(level)} {message}")
        if len(self.lines) > LOG_LINES:
            del self.lines[: len(self.lines) - LOG_LINES]
        LOG.log(level, "job %s: %s", self.job_id, message)


class RunControl:
    """Cancellation and live progress of one run.

    The engine calls ``advance`` on :class:`_RunProgress` per file; on the engine's own thread
    that lands in :meth:`tick`, which at most every ``interval`` seconds writes the progress
    snapshot and re-reads the job for an ``abort`` event.  Once aborted, the next tick raises
    :class:`Cancelled` inside the engine: the repository writer then drops the session
    (no generation, data already uploaded is adopted by the next backup), as after any error.
    """

    def __init__(
        self,
        agent: Agent,
        job_id: str,
        interval: float,
        hook: Callable[[ProgressSnapshot], None] | None = None,
    ) -> None:
        self.agent = agent
        self.job_id = job_id
        self.interval = interval
        self.hook = hook
        self.cancelled = threading.Event()
        self.stop_requested = False
        self._last = float("-inf")
        # What the run is doing now (the action's name): the progress' ``phase``.
        self.phase = ""
        # Every action kind's progress goes to the run record; a backup also hooks its own
        # record in here (on_snapshot).
        self.on_snapshot: Callable[[ProgressSnapshot], None] | None = None
        self.publish: Callable[[RunControl, ProgressSnapshot | None], None] | None = None
        # The progress of the action working now (or last): the run's final figures.
        self.last_progress: Progress | None = None

    def poll_events(self) -> None:
        try:
            event = (self.agent.store.get_job(self.job_id).get("job_schedule") or {}).get("event")
        except NotFound:
            event = "abort"  # the job was deleted under us: stop working for it
        except FreezerAPIError:
            return  # unreachable: keep working, the report will be spooled
        if event == "abort":
            self.cancelled.set()
        elif event == "stop":
            # stop lets the run finish; the job just does not run again.
            self.stop_requested = True

    def tick(self, progress: Progress | None = None, force: bool = False) -> None:
        if progress is not None:
            self.last_progress = progress
            if self.hook is not None:
                self.hook(progress.snapshot())
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            if progress is not None:
                snapshot = progress.snapshot()
                if self.publish is not None:
                    self.publish(self, snapshot)
                if self.on_snapshot is not None:
                    self.on_snapshot(snapshot)
            self.poll_events()
        if self.cancelled.is_set():
            raise Cancelled("aborted by an abort event")

    def begin(self, phase: str) -> None:
        """An action starts: the progress' phase changes (published within the interval)."""
        self.phase = phase
        now = time.monotonic()
        if self.publish is not None and now - self._last >= self.interval:
            self._last = now
            self.publish(self, None)

    def sleep(self, seconds: float) -> None:
        """Wait between retries, still answering an abort."""
        deadline = time.monotonic() + seconds
        while True:
            self.tick(force=True)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, self.interval))


class _RunProgress(Progress):
    def __init__(self, control: RunControl) -> None:
        super().__init__(None)
        self._control = control
        self._owner = threading.get_ident()

    def advance(self, bytes: int = 0, files: int = 0) -> None:  # noqa: A002 - contract name
        super().advance(bytes=bytes, files=files)
        # Only the engine's own thread may raise: an exception in a reader or writer thread
        # would surface somewhere less predictable.
        if threading.get_ident() == self._owner:
            self._control.tick(self)


@dataclass
class ActionOutcome:
    action: str
    result: str = "success"  # success | fail | aborted | skipped | refused
    attempts: int = 0
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # The run record's per-action shape (resources.JobRun.actions).
        return {
            "name": self.action,
            "result": self.result,
            "attempts": self.attempts,
            "error": self.error,
            "summary": dict(self.details),
        }


def run_progress(snapshot: ProgressSnapshot | None, phase: str) -> dict[str, Any]:
    """The run record's ``progress``: the engine's snapshot plus ``percent`` and ``phase``."""
    if snapshot is None:
        return {
            "bytes_done": 0,
            "bytes_total": None,
            "files_done": 0,
            "files_total": None,
            "rate": 0.0,
            "eta": None,
            "percent": None,
            "phase": phase,
        }
    fraction = snapshot.fraction
    if fraction is None and snapshot.files_total:
        fraction = min(1.0, snapshot.files_done / snapshot.files_total)
    return {
        "bytes_done": snapshot.bytes_done,
        "bytes_total": snapshot.bytes_total,
        "files_done": snapshot.files_done,
        "files_total": snapshot.files_total,
        "rate": round(snapshot.rate, 1),
        "eta": None if snapshot.eta is None else round(snapshot.eta, 1),
        "percent": None if fraction is None else round(100 * fraction, 1),
        "phase": phase,
    }


def run_summary(outcomes: list[ActionOutcome]) -> dict[str, Any]:
    """The run's summary: its (last) restore's when it restored something, else the last
    successful action's."""
    for wanted in ("restore", None):
        for outcome in reversed(outcomes):
            if outcome.details and (wanted is None or outcome.action == wanted):
                if wanted or outcome.result == "success":
                    return {"action": outcome.action, **outcome.details}
    return {}


def in_progress(schedule: Mapping[str, Any]) -> bool:
    """Whether a run holds the job: ``running``/``aborting``, or a claim (``current_pid``) not
    yet followed by an end.  The second half matters because a ``start`` event clears
    ``status`` (freezer-api and the embedded transport both do), even during a run: the
    status alone would let a second agent start the job while it runs."""
    if schedule.get("status") in ("running", "aborting"):
        return True
    started, ended = schedule.get("time_started"), schedule.get("time_ended")
    return bool(schedule.get("current_pid")) and (
        isinstance(started, int) and (not isinstance(ended, int) or ended < started)
    )


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Agent:
    def __init__(
        self,
        client: FreezerClient,
        config: AgentConfig,
        *,
        progress_hook: Callable[[ProgressSnapshot], None] | None = None,
    ) -> None:
        self.config = config
        self.client_id = config.client_id or default_client_id(config.hostname)
        self.hostname = config.hostname
        self.state = LocalState(config.state_dir, config.history_size)
        self.key_dir = config.key_dir or self.state.key_dir
        self.store = AgentStore(client, self.state.spool_dir)
        # Run history goes to the API's job_runs where it has them (embedded); freezer-api
        # has none, so in remote mode it stays in the local state dir (docs/agent.md).
        self.runs_in_api = client.transport.supports("job_runs")
        # job_id -> the session tag of the round a running job takes part in.
        self._session_tags: dict[str, int] = {}
        # Every job, record and run of this agent is in this project (its client's scope).
        self.project_id = config.project_id or client.context.project_id
        # Test seam: called with every progress snapshot on the engine's thread.
        self.progress_hook = progress_hook
        self.stopping = threading.Event()

    # ----------------------------------------------------------------- capabilities
    @staticmethod
    def engines() -> list[str]:
        from freezer_ui.engines.registry import engine_names

        return engine_names()

    def storages(self) -> list[str]:
        """``local`` plus the remote storages the operator enabled (and that are registered)."""
        from freezer_ui.storage.registry import storage_names

        known = set(storage_names())
        return ["local", *(n for n, _ in self.config.remote_storages if n in known)]

    def registration(self) -> dict[str, Any]:
        """The client document: what this host can run, from the registries.

        freezer-api only accepts the names of its own enums in ``supported_*``; ours that it
        does not know (e.g. a zfs engine) are still checked by the agent when a job runs.
        """
        return {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "description": self.config.description,
            "supported_actions": [
                a
                for a in SUPPORTED_ACTIONS
                if a in schemas.SUPPORTED_ACTIONS and (a != "exec" or self.config.allow_exec)
            ],
            "supported_modes": list(SUPPORTED_MODES),
            "supported_storages": [s for s in self.storages() if s in schemas.SUPPORTED_STORAGES],
            "supported_engines": [e for e in self.engines() if e in schemas.SUPPORTED_ENGINES],
        }

    def register(self) -> str:
        return self.store.register(self.registration())

    # ----------------------------------------------------------------- startup recovery
    def recover(self) -> list[str]:
        """Fail the runs a dead agent of this client left ``running``; return their job ids.

        A run is orphaned when the job says ``running``/``aborting`` for this client and the
        process in ``current_pid`` is gone from this host (another live agent of the same
        client keeps its runs).  Its creating backup record becomes ``error``.
        """
        recovered = []
        for job in self.store.my_jobs(self.client_id):
            job_id = job["job_id"]
            schedule = job.get("job_schedule") or {}
            if not in_progress(schedule):
                continue
            pid = schedule.get("current_pid")
            if _pid_alive(pid) and pid != os.getpid():
                continue
            local = self.state.current(job_id) or {}
            reason = f"interrupted: the agent running it (pid {pid}) stopped before it ended"
            now = int(time.time())
            started = schedule.get("time_started")
            started = started if isinstance(started, int) and started > 0 else None
            run_id = local.get("run_id")
            if not run_id and self.runs_in_api:
                # The dead agent kept its state elsewhere (another state dir or host): its
                # run record, still ``running``, is the one to close.
                try:
                    open_runs = self.store.running_runs(job_id, self.client_id)
                except FreezerAPIError:
                    open_runs = []
                run_id = open_runs[0]["run_id"] if open_runs else None
            self._record_run(
                {
                    "run_id": run_id or uuid.uuid4().hex,
                    "job_id": job_id,
                    "client_id": self.client_id,
                    "status": "interrupted",
                    "started": started,
                    "ended": now,
                    "duration": None if started is None else now - started,
                    "reason": reason,
                    "actions": local.get("actions", []),
                    "log": [*local.get("log", []), reason][-LOG_LINES:],
                }
            )
            aborting = schedule.get("status") == "aborting" or schedule.get("event") == "abort"
            self.store.report(
                {
                    "op": "schedule",
                    "job_id": job_id,
                    "set": {
                        "status": "stop" if aborting else self._status_after(schedule),
                        "result": "aborted" if aborting else "fail",
                        "time_ended": now,
                        "current_pid": 0,
                    },
                    "clear_events": ["abort", "stop"],
                }
            )
            records = list(local.get("backup_ids", []))
            if not records:
                try:
                    records = [
                        b["backup_id"]
                        for b in self.store.job_backups(job_id)
                        if b.get("status") == "creating"
                    ]
                except FreezerAPIError:
                    records = []
            for backup_id in records:
                self.store.report(
                    {
                        "op": "backup",
                        "backup_id": backup_id,
                        "status": "error",
                        "metadata": {"error": reason},
                    }
                )
            self.state.clear_current(job_id)
            recovered.append(job_id)
            LOG.warning("job %s: %s", job_id, reason)
        return recovered

    # ----------------------------------------------------------------- the loop
    def start(self) -> None:
        """Register, then recover what a previous agent left running."""
        self.store.flush()
        self.register()
        self.recover()

    def run_forever(self) -> None:
        """Poll until :attr:`stopping` is set; back off while the API is unreachable."""
        delay = self.config.poll_interval
        started = False
        while not self.stopping.is_set():
            try:
                if not started:
                    self.start()
                    started = True
                self.poll()
                delay = self.config.poll_interval
            except Unavailable as e:
                delay = min(max(delay * 2, 1.0), self.config.backoff_max)
                LOG.warning("API unreachable (%s); retrying in %.0f s", e, delay)
            except Exception:  # noqa: BLE001 - an agent must survive one bad poll
                LOG.exception("poll failed")
            self.stopping.wait(delay)

    def poll(self, now: datetime | None = None) -> list[str]:
        """One pass over this client's jobs; returns the ids of the jobs that ran."""
        self.store.flush()
        ran = []
        for job in self.store.my_jobs(self.client_id):
            if self.stopping.is_set():
                break
            if self.handle(job, now or _now()):
                ran.append(job["job_id"])
        return ran

    def _status_after(self, schedule: Mapping[str, Any]) -> str:
        """``scheduled`` while the schedule has runs ahead, else ``completed``."""
        if not sched.is_recurring(schedule):
            return "completed"
        try:
            probe = {**schedule, "time_started": int(time.time()), "time_ended": int(time.time())}
            return "scheduled" if sched.next_run(probe, _now()) is not None else "completed"
        except sched.ScheduleError:
            return "completed"

    def handle(self, job: dict[str, Any], now: datetime) -> bool:
        """Apply the job's pending event or run it if due; True if it ran here."""
        job_id = job["job_id"]
        schedule = job.get("job_schedule") or {}
        event = schedule.get("event") or ""
        status = schedule.get("status") or ""
        if in_progress(schedule):
            # Another agent's run (ours are synchronous, so never here).  A start event
            # requested meanwhile stays pending and runs once that run has ended.
            return False
        if event in ("stop", "abort"):
            self.store.update_if(
                job_id,
                {"event": event, "status": schedule.get("status")},
                {"status": "stop", "event": ""},
            )
            return False
        if status in ("stop", "removed") and event != "start":
            return False
        if status == "completed" and event != "start":
            return False
        if event != "start":
            try:
                when = sched.next_run(schedule, now)
            except sched.ScheduleError as e:
                return self._refuse_schedule(job, str(e))
            if when is None:
                self.store.update_if(
                    job_id, {"status": schedule.get("status"), "event": ""}, {"status": "completed"}
                )
                return False
            if when > now:
                if status != "scheduled":
                    self.store.update_if(
                        job_id,
                        {"status": schedule.get("status"), "event": ""},
                        {"status": "scheduled"},
                    )
                return False
        if job.get("session_id") and not self._session_start(job):
            return False
        return self._claim_and_run(job, now)

    # ----------------------------------------------------------------- sessions
    def _session_start(self, job: dict[str, Any]) -> bool:
        """Tell the job's session it starts (freezer-scheduler's rule); True to run it now.

        ``success``: run (the first member starts a new round, members within the session's
        hold-off window join it).  ``hold-off``: a round started moments ago that this job
        cannot join; try again next poll.  ``out-of-sync``: the job missed the round; its
        ``session_tag`` is brought to the session's so it takes part in the next one.
        """
        job_id, session_id = job["job_id"], job["session_id"]
        tag = job.get("session_tag")
        tag = tag if isinstance(tag, int) and not isinstance(tag, bool) else 0
        try:
            answer = self.store.client.sessions.start(session_id, job_id, tag)
        except NotFound:
            LOG.warning("job %s: session %s is gone; running the job alone", job_id, session_id)
            return True
        except ValidationError as e:
            LOG.warning("job %s: session %s refused the start: %s", job_id, session_id, e)
            return False
        result, new_tag = answer.get("result"), answer.get("session_tag")
        if isinstance(new_tag, int) and new_tag != tag and result in ("success", "out-of-sync"):
            self.store.client.jobs.update(job_id, {"session_tag": new_tag})
        if result == "success":
            self._session_tags[job_id] = new_tag if isinstance(new_tag, int) else tag
            return True
        LOG.info("job %s: session %s answered %s; not run now", job_id, session_id, result)
        return False

    def _refuse_schedule(self, job: dict[str, Any], reason: str) -> bool:
        log = RunLog(job["job_id"])
        log(f"refused: {reason}", logging.ERROR)
        now = int(time.time())
        self._record_run(
            {
                "run_id": uuid.uuid4().hex,
                "job_id": job["job_id"],
                "client_id": self.client_id,
                "status": "fail",
                "started": now,
                "ended": now,
                "duration": 0,
                "reason": reason,
                "actions": [],
                "log": log.lines,
            }
        )
        self.store.update_if(
            job["job_id"],
            {"status": (job.get("job_schedule") or {}).get("status")},
            {"status": "stop", "result": "fail", "time_ended": now},
        )
        return False

    # ----------------------------------------------------------------- run records
    def _open_run(self, job_id: str, run_id: str, started: int) -> None:
        """The run's record, ``running``, as soon as the job is claimed."""
        if not self.runs_in_api:
            return
        try:
            self.store.create_run(
                {
                    "run_id": run_id,
                    "job_id": job_id,
                    "client_id": self.client_id,
                    "status": "running",
                    "started": started,
                    "progress": run_progress(None, "starting"),
                }
            )
        except FreezerAPIError as e:
            # The final report creates it if this one never arrived (upsert by run_id).
            LOG.warning("job %s: run %s not recorded yet: %s", job_id, run_id, e)

    def _record_run(self, run: dict[str, Any]) -> None:
        """A run's final record: into the API's job_runs (spooled while the API is down), or
        the local history where the API has none."""
        if self.runs_in_api:
            if self.store.report({"op": "run", "run": run}):
                try:
                    # The history is bounded: the last history_size runs per job are kept.
                    self.store.prune_runs(run["job_id"], self.config.history_size)
                except FreezerAPIError as e:
                    LOG.warning("job %s: old runs not pruned: %s", run["job_id"], e)
        else:
            self.state.add_run(run["job_id"], run)

    # ----------------------------------------------------------------- one run
    def _claim_and_run(self, job: dict[str, Any], now: datetime) -> bool:
        job_id = job["job_id"]
        seen = job.get("job_schedule") or {}
        started = int(time.time())

        # The claim: only if the job is still exactly as we read it (not claimed meanwhile,
        # no new event, same run times), it becomes ours.  One winner among racing agents.
        expect = {
            key: seen.get(key)
            for key in ("status", "event", "time_started", "time_ended", "current_pid")
        }
        claimed = self.store.update_if(
            job_id,
            expect,
            {
                "status": "running",
                "result": "",
                "time_started": started,
                "current_pid": os.getpid(),
                "event": "",  # a start event is consumed by this run
            },
        )
        if claimed is None:
            self._session_tags.pop(job_id, None)  # the agent that claimed it ends its round
            return False  # another agent claimed it first, or the job changed: next poll
        self._run(job, claimed, started)
        return True

    def _run(self, job: dict[str, Any], schedule: dict[str, Any], started: int) -> None:
        job_id = job["job_id"]
        run_id = uuid.uuid4().hex
        log = RunLog(job_id)
        control = RunControl(self, job_id, self.config.progress_interval, self.progress_hook)
        current: dict[str, Any] = {
            "run_id": run_id,
            "pid": os.getpid(),
            "started": started,
            "backup_ids": [],
            "actions": [],
        }
        self.state.set_current(job_id, current)
        self._open_run(job_id, run_id, started)

        def publish(ctl: RunControl, snapshot: ProgressSnapshot | None) -> None:
            progress = run_progress(snapshot, ctl.phase)
            current["progress"] = progress
            self.state.set_current(job_id, current)
            if self.runs_in_api:
                try:
                    self.store.update_run(run_id, {"progress": progress})
                except FreezerAPIError:
                    pass  # progress is best effort; the final record is spooled if need be

        control.publish = publish
        log(f"run {run_id} started on {self.hostname} (client {self.client_id})")
        outcomes: list[ActionOutcome] = []
        result = "success"
        refused = False
        for index, entry in enumerate(job.get("job_actions") or []):
            action = dict(entry.get("freezer_action") or {})
            name = str(action.get("action") or "")
            if result != "success" and not entry.get("mandatory"):
                # freezer-scheduler's rule: after a failure only mandatory actions still run.
                log(f"action {index} ({name}) skipped after an earlier failure")
                outcomes.append(ActionOutcome(name, "skipped"))
                continue
            if control.cancelled.is_set():
                outcomes.append(ActionOutcome(name, "skipped"))
                continue
            control.begin(name)
            outcome = self._run_action(job, entry, index, control, log, current, started)
            outcomes.append(outcome)
            current["actions"] = [o.to_dict() for o in outcomes]
            current["log"] = log.lines[-RECORD_LOG_LINES:]
            self.state.set_current(job_id, current)
            if outcome.result == "aborted":
                result = "aborted"
            elif outcome.result in ("fail", "refused") and result == "success":
                result = "fail"
            refused = refused or outcome.result == "refused"
        ended = int(time.time())
        if result == "aborted" or control.cancelled.is_set():
            result = "aborted"
            status = "stop"
        elif control.stop_requested or refused:
            # A refused action will be refused again until the job is edited: do not retry it
            # every interval; a start event runs it again.
            status = "stop"
        else:
            status = self._status_after(schedule)
        log(f"run {run_id} ended: {result}")
        last = control.last_progress
        final = run_progress(last.snapshot() if last is not None else None, "done")
        self._record_run(
            {
                "run_id": run_id,
                "job_id": job_id,
                "client_id": self.client_id,
                "status": result,  # success | fail | aborted
                "started": started,
                "ended": ended,
                "duration": ended - started,
                "progress": final,
                "reason": next((o.error for o in outcomes if o.error), ""),
                "actions": [o.to_dict() for o in outcomes],
                "summary": run_summary(outcomes),
                "log": log.lines,
            }
        )
        delivered = self.store.report(
            {
                "op": "schedule",
                "job_id": job_id,
                "set": {
                    "status": status,
                    "result": result,
                    "time_ended": ended,
                    "current_pid": 0,
                },
                "clear_events": ["abort"] + (["stop"] if control.stop_requested else []),
            }
        )
        if job_id in self._session_tags:
            delivered = (
                self.store.report(
                    {
                        "op": "session_end",
                        "session_id": job["session_id"],
                        "job_id": job_id,
                        "session_tag": self._session_tags.pop(job_id),
                        "result": result,
                    }
                )
                and delivered
            )
        if not delivered:
            LOG.warning("job %s: API unreachable, the result is spooled", job_id)
        self.state.clear_current(job_id)

    def _run_action(
        self,
        job: dict[str, Any],
        entry: Mapping[str, Any],
        index: int,
        control: RunControl,
        log: RunLog,
        current: dict[str, Any],
        started: int,
    ) -> ActionOutcome:
        action = dict(entry.get("freezer_action") or {})
        name = str(action.get("action") or "")
        outcome = ActionOutcome(name)
        retries = entry.get("max_retries")
        retries = retries if isinstance(retries, int) and retries > 0 else 0
        interval = entry.get("max_retries_interval")
        interval = interval if isinstance(interval, int) and interval >= 0 else 6
        for attempt in range(1, retries + 2):
            outcome.attempts = attempt
            try:
                outcome.details = self._execute(job, action, control, log, current, started)
                outcome.result, outcome.error = "success", ""
                return outcome
            except Cancelled:
                log(f"action {index} ({name}) aborted")
                outcome.result, outcome.error = "aborted", "aborted"
                return outcome
            except Refused as e:
                log(f"action {index} ({name}) refused: {e}", logging.ERROR)
                outcome.result, outcome.error = "refused", str(e)
                if name == "backup":
                    self._report_refused_backup(job, action, started, current, str(e), log)
                return outcome
            except Exception as e:  # noqa: BLE001 - every failure is reported, then retried
                outcome.result, outcome.error = "fail", f"{type(e).__name__}: {e}"
                log(f"action {index} ({name}) attempt {attempt} failed: {outcome.error}",
                    logging.ERROR)  # fmt: skip
                LOG.debug("%s", traceback.format_exc())
            if attempt <= retries:
                log(f"retrying in {interval} s ({attempt}/{retries})")
                try:
                    control.sleep(interval)
                except Cancelled:
                    outcome.result, outcome.error = "aborted", "aborted"
                    return outcome
        return outcome

    def _report_refused_backup(
        self,
        job: dict[str, Any],
        action: dict[str, Any],
        started: int,
        current: dict[str, Any],
        reason: str,
        log: RunLog,
    ) -> None:
        """An ``error`` backup record says why, where the dashboard looks (both modes); the
        job's ``result`` can only say ``fail`` (freezer-api's enum)."""
        from freezer_ui.agent.actions import record_base

        base = record_base(self, job, action, started, current["run_id"])
        self.store.report(
            {
                "op": "backup",
                "backup_id": None,
                "status": "error",
                "metadata": {**base, "error": reason, "log": log.lines[-RECORD_LOG_LINES:]},
            }
        )

    # ----------------------------------------------------------------- actions
    def _execute(
        self,
        job: dict[str, Any],
        action: dict[str, Any],
        control: RunControl,
        log: RunLog,
        current: dict[str, Any],
        started: int,
    ) -> dict[str, Any]:
        from freezer_ui.agent import actions

        name = action.get("action")
        if name not in SUPPORTED_ACTIONS:
            raise Refused(
                f"client {self.client_id} does not support action {name!r} "
                f"(supported: {', '.join(SUPPORTED_ACTIONS)})"
            )
        mode = action.get("mode")
        if mode not in (None, "", *SUPPORTED_MODES):
            raise Refused(f"client {self.client_id} does not support mode {mode!r} (supported: fs)")
        environ = None
        if not self.config.shared_passphrase:
            environ = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
        try:
            passphrase = resolve_passphrase(
                action, self.key_dir, environ, project_id=self.project_id
            )
        except SecretError as e:
            raise Refused(str(e)) from None
        ctx = actions.ActionContext(
            agent=self,
            job=job,
            action=action,
            control=control,
            log=log,
            current=current,
            started=started,
            passphrase=passphrase,
        )
        return actions.run(ctx)


__all__ = [
    "Agent",
    "AgentConfig",
    "Cancelled",
    "Refused",
    "default_client_id",
]
