"""Faults: two agents racing for one job, an agent killed mid-run, an unreachable API."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connections

from freezer_ui.agent.state import read_progress
from freezer_ui.agent.status import job_progress
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Unavailable
from freezer_ui.api.transports.base import BaseTransport
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.repository import Repository
from freezer_ui.storage import get_storage
from tests.agent.conftest import (
    HOST,
    PROJECT,
    ROOT,
    backup_job,
    backups_of,
    make_tree,
    runs_of,
    schedule_of,
)


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def open_repo(path):
    return Repository.open(get_storage(str(path)))


def test_two_agents_never_run_one_job_twice(api, make_agent, tmp_path):
    agents = [make_agent("a"), make_agent("b")]
    jobs = {}
    for i in range(10):
        src = make_tree(tmp_path / f"src{i}", files=3, seed=i)
        # No schedule: each job runs exactly once.
        jobs[api.jobs.create(backup_job(src, tmp_path / f"repo{i}", schedule={}))] = i
    ran = {agent.state.root: [] for agent in agents}
    start = threading.Barrier(len(agents))
    errors = []

    def work(agent):
        try:
            start.wait()
            for _ in range(20):  # both keep polling while jobs remain
                ran[agent.state.root] += agent.poll()
        except Exception as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    everything = [job_id for runs in ran.values() for job_id in runs]
    assert sorted(everything) == sorted(jobs)  # each job once, by one agent or the other
    for job_id, i in jobs.items():
        assert schedule_of(api, job_id)["status"] == "completed"
        assert schedule_of(api, job_id)["result"] == "success"
        assert len(backups_of(api, job_id)) == 1
        assert len(open_repo(tmp_path / f"repo{i}").generations()) == 1
        (run,) = runs_of(api, job_id)  # one run record, by the agent that won the claim
        assert run["status"] == "success"


def test_killed_agent_run_is_marked_interrupted_and_the_next_run_succeeds(
    api, make_agent, agent_db, tmp_path
):
    agent = make_agent("local")  # registers the client; later it recovers
    src, repo = make_tree(tmp_path / "src", files=200, size=1024), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))
    state = tmp_path / "state" / "killed"
    env = {
        **os.environ,
        "FREEZER_UI_AGENT_TEST_DB": str(agent_db),
        "PYTHONPATH": str(ROOT),
    }
    # The real CLI, with each progress step slowed (slow_agent.py) so the run is still going
    # when the test kills it.
    child = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "agent" / "slow_agent.py"),
            "run",
            "--mode=embedded",
            "--settings=tests.agent.agent_settings",
            f"--project-id={PROJECT}",
            f"--client-id={HOST}",
            f"--hostname={HOST}",
            f"--state-dir={state}",
            "--poll-interval=0.1",
            "--progress-interval=0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: (read_progress(str(state / "agent"), job_id) or {}).get("files_done", 0) >= 3,
            what="the child's backup to make progress",
        )
        assert schedule_of(api, job_id)["status"] == "running"
        assert schedule_of(api, job_id)["current_pid"] == child.pid
        (record,) = backups_of(api, job_id)
        assert record["status"] == "creating"
        live = job_progress(api, job_id)  # what the dashboard polls
        assert live["files_done"] >= 1 and live["rate"] >= 0 and not live["finished"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    # A restarted agent of this client (here: another process, the test's) cleans up.
    assert agent.recover() == [job_id]
    schedule = schedule_of(api, job_id)
    assert schedule["result"] == "fail" and schedule["status"] == "scheduled"
    (run,) = runs_of(api, job_id)
    assert run["status"] == "interrupted" and "interrupted" in run["reason"]
    (record,) = backups_of(api, job_id)
    assert record["status"] == "error" and "interrupted" in record["backup_metadata"]["error"]
    assert open_repo(repo).generations() == []

    api.jobs.start(job_id)
    assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success"
    repository = open_repo(repo)
    assert len(repository.generations()) == 1
    assert repository.verify().ok


class SwitchableTransport(BaseTransport):
    """The embedded transport behind a switch: ``down`` makes every call Unavailable, as a
    freezer-api that cannot be reached would."""

    def __init__(self):
        self.inner = EmbeddedTransport()
        self.down = False

    def __getattribute__(self, name):
        attr = object.__getattribute__(self, name)
        if name in ("inner", "down", "close") or name.startswith("__") or not callable(attr):
            return attr

        def call(*args, **kwargs):
            if object.__getattribute__(self, "down"):
                raise Unavailable("freezer-api unreachable (test switch)")
            return attr(*args, **kwargs)

        return call

    def list(self, *a, **k):
        return self.inner.list(*a, **k)

    def get(self, *a, **k):
        return self.inner.get(*a, **k)

    def create(self, *a, **k):
        return self.inner.create(*a, **k)

    def update(self, *a, **k):
        return self.inner.update(*a, **k)

    def delete(self, *a, **k):
        return self.inner.delete(*a, **k)

    def job_event(self, *a, **k):
        return self.inner.job_event(*a, **k)

    def job_update_if(self, *a, **k):
        return self.inner.job_update_if(*a, **k)

    def session_add_job(self, *a, **k):
        return self.inner.session_add_job(*a, **k)

    def session_remove_job(self, *a, **k):
        return self.inner.session_remove_job(*a, **k)

    def session_action(self, *a, **k):
        return self.inner.session_action(*a, **k)


def test_results_are_spooled_while_the_api_is_unreachable_then_delivered(api, make_agent, tmp_path):
    transport = SwitchableTransport()
    client = FreezerClient(transport, project_id=PROJECT, user_id="agent")

    def hook(snapshot):
        transport.down = True  # the API goes away once the backup is under way

    agent = make_agent(client=client, progress_hook=hook)
    src, repo = make_tree(tmp_path / "src", files=5), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))
    assert agent.poll() == [job_id]
    assert transport.down

    # The backup itself succeeded; its reports wait on disk.
    assert len(open_repo(repo).generations()) == 1
    assert len(agent.store.spool) == 3  # the backup record, the run record, the job result
    assert schedule_of(api, job_id)["status"] == "running"
    (run,) = runs_of(api, job_id)
    assert run["status"] == "running"  # as created at the claim, before the outage
    (record,) = backups_of(api, job_id)
    assert record["status"] == "creating"
    with pytest.raises(Unavailable):
        agent.poll()
    assert len(agent.store.spool) == 3

    transport.down = False
    assert agent.poll() == []  # delivers the spool; the job is not due again
    assert len(agent.store.spool) == 0
    schedule = schedule_of(api, job_id)
    assert schedule["status"] == "scheduled" and schedule["result"] == "success"
    (record,) = backups_of(api, job_id)
    assert record["status"] == "available"
    assert record["backup_metadata"]["generation_id"] == open_repo(repo).generations()[0].id
    (run,) = runs_of(api, job_id)
    assert run["status"] == "success" and run["ended"] >= run["started"]
    assert run["actions"][0]["summary"]["backup_id"] == record["backup_id"]


def test_spool_survives_an_agent_restart(api, make_agent, tmp_path):
    transport = SwitchableTransport()
    client = FreezerClient(transport, project_id=PROJECT, user_id="agent")
    agent = make_agent("spooler", client=client, progress_hook=lambda s: None)
    src, repo = make_tree(tmp_path / "src", files=2), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo, schedule={}))
    agent.progress_hook = lambda snapshot: setattr(transport, "down", True)
    assert agent.poll() == [job_id]
    assert len(agent.store.spool) == 3
    # A new agent on the same state dir, with the API back: start() delivers first.
    restarted = make_agent("spooler")
    assert len(restarted.store.spool) == 0
    schedule = schedule_of(api, job_id)
    assert schedule["status"] == "completed" and schedule["result"] == "success"
