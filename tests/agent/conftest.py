"""Agent fixtures: a real sqlite *file* (agents in threads and subprocesses share it), real
FreezerClients on the embedded transport, real tar backups into tmp local repositories."""

import contextlib
import copy
import os
import pathlib
import uuid

import pytest

from freezer_ui.agent.agent import Agent, AgentConfig
from freezer_ui.api.client import FreezerClient

PROJECT = "proj-a"
HOST = "host1"
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def agent_db(tmp_path, django_db_blocker, settings):
    """A migrated sqlite file of its own, as the embedded store (``FREEZER_UI_DATABASE``).

    Not pytest-django's test database: that one is in memory (one process only) and wrapped
    in a transaction, while agents here run in threads and processes with real commits.
    """
    with shared_sqlite_store("agent", tmp_path, settings, django_db_blocker) as path:
        yield path


@contextlib.contextmanager
def shared_sqlite_store(prefix, tmp_path, settings, django_db_blocker):
    """Point ``FREEZER_UI_DATABASE`` at a new, migrated sqlite file; yield its path.

    Not pytest-django's test database: that one is in memory (one process only) and wrapped in
    a transaction, while agents run in threads and processes with real commits.
    """
    from django.core.management import call_command
    from django.db import connections

    alias = f"{prefix}_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "freezer_ui.sqlite3"
    config = copy.deepcopy(connections.databases["default"])
    # IMMEDIATE: a deferred transaction that reads, then writes, fails at once with "database
    # is locked" when another connection writes meanwhile (sqlite refuses the lock upgrade to
    # avoid a deadlock, without waiting).  Agents and web workers write concurrently, so
    # freezer_ui.conf.embedded_database() needs the same option (docs/agent.md).
    options = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    config.update(NAME=str(path), OPTIONS=options, TEST={"NAME": str(path)})
    connections.databases[alias] = config
    settings.FREEZER_UI_DATABASE = alias
    with django_db_blocker.unblock():
        call_command("migrate", "freezer_ui", database=alias, verbosity=0)
        try:
            yield path
        finally:
            for conn in connections.all(initialized_only=True):
                if conn.alias == alias:
                    conn.close()
            del connections.databases[alias]


def embedded_client(user="alice", project=PROJECT):
    from freezer_ui.api.transports.embedded import EmbeddedTransport

    return FreezerClient(EmbeddedTransport(), project_id=project, user_id=user, roles=["member"])


@pytest.fixture
def api(agent_db):
    """The dashboard user's client (project A)."""
    return embedded_client()


@pytest.fixture
def make_agent(agent_db, tmp_path):
    def make(name="agent1", client=None, **options):
        config = AgentConfig(
            state_dir=str(tmp_path / "state" / name),
            client_id=HOST,
            hostname=HOST,
            poll_interval=0.05,
            progress_interval=0.05,
        )
        hook = options.pop("progress_hook", None)
        for key, value in options.items():
            setattr(config, key, value)
        agent = Agent(client or embedded_client(user="agent"), config, progress_hook=hook)
        agent.start()
        return agent

    return make


def make_tree(root, files=20, size=4096, seed=0):
    """A small tree with distinct file contents, nested directories and a symlink."""
    root = pathlib.Path(root)
    for i in range(files):
        sub = root / f"d{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(os.urandom(8) + bytes([(seed + i) % 256]) * (size - 8))
    (root / "link").symlink_to("d0")
    return root


def backup_job(source, repo, *, name="data", schedule=None, **action):
    return {
        "description": f"backup {name}",
        "client_id": HOST,
        "job_schedule": schedule if schedule is not None else {"schedule_interval": "1 days"},
        "job_actions": [
            {
                "freezer_action": {
                    "action": "backup",
                    "mode": "fs",
                    "backup_name": name,
                    "path_to_backup": str(source),
                    "storage": "local",
                    "container": str(repo),
                    "engine_name": "tar",
                    **action,
                },
                "max_retries": 0,
                "max_retries_interval": 0,
            }
        ],
    }


def runs_of(api, job_id):
    """The job's run records (newest first), as the dashboard reads them."""
    return list(api.job_runs.list(limit=100, job_id=job_id))


def schedule_of(api, job_id):
    return api.jobs.get(job_id)["job_schedule"]


def backups_of(api, job_id):
    return [
        b
        for b in api.backups.list(limit=100)
        if (b.get("backup_metadata") or {}).get("job_id") == job_id
    ]


# The real freezer-api 19.0.0 on loopback, from the API tests (skips when it cannot install).
from tests.api.conftest import freezer_api_python, freezer_api_url  # noqa: E402, F401
