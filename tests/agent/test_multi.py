"""One agent process for every project (embedded): discovery, isolation, the CLI."""

import os
import subprocess
import sys

import pytest

from freezer_ui.agent.agent import AgentConfig
from freezer_ui.agent.multi import MultiProjectAgent
from freezer_ui.api.client import FreezerClient
from freezer_ui.repository import Repository
from freezer_ui.storage import get_storage
from tests.agent.conftest import (
    HOST,
    ROOT,
    backup_job,
    backups_of,
    embedded_client,
    make_tree,
    runs_of,
    schedule_of,
)


def admin_client():
    from freezer_ui.api.transports.embedded import EmbeddedTransport

    return FreezerClient(
        EmbeddedTransport(), project_id="agent-admin", user_id="agent", roles=["admin"]
    )


@pytest.fixture
def tenants(agent_db):
    """Two projects whose users registered this host (one with freezer-agent's convention)."""
    a, b = embedded_client("alice", "proj-a"), embedded_client("bob", "proj-b")
    a.clients.create({"client_id": HOST, "hostname": HOST})
    b.clients.create({"client_id": f"proj-b_{HOST}", "hostname": HOST})
    return a, b


def multi_agent(tmp_path, **options):
    config = AgentConfig(
        state_dir=str(tmp_path / "state"),
        client_id=HOST,
        hostname=HOST,
        poll_interval=0.05,
        progress_interval=0.05,
        allowed_roots=(str(tmp_path / "tenants" / "{project_id}"),),
    )
    for key, value in options.pop("config", {}).items():
        setattr(config, key, value)
    return MultiProjectAgent(
        lambda project: embedded_client("agent", project),
        config,
        admin_client=admin_client(),
        **options,
    )


def test_one_agent_runs_each_projects_jobs_in_that_project(tenants, tmp_path):
    a, b = tenants
    root = tmp_path / "tenants"
    jobs = {}
    for client, project, client_id in ((a, "proj-a", HOST), (b, "proj-b", f"proj-b_{HOST}")):
        src = make_tree(root / project / "src", files=4, seed=len(jobs))
        job = backup_job(src, root / project / "repo")
        job["client_id"] = client_id
        jobs[project] = client.jobs.create(job)

    agent = multi_agent(tmp_path, all_projects=True)
    assert agent.start() == ["proj-a", "proj-b"]
    assert agent.poll() == {"proj-a": [jobs["proj-a"]], "proj-b": [jobs["proj-b"]]}

    for client, project in ((a, "proj-a"), (b, "proj-b")):
        other = b if client is a else a
        job_id = jobs[project]
        assert schedule_of(client, job_id)["result"] == "success"
        (record,) = backups_of(client, job_id)
        assert record["project_id"] == project
        (run,) = runs_of(client, job_id)
        assert run["project_id"] == project and run["status"] == "success"
        # Nothing of this project is visible from the other one.
        assert backups_of(other, job_id) == [] and runs_of(other, job_id) == []
        (gen,) = Repository.open(get_storage(str(root / project / "repo"))).generations()
        assert gen.labels == {"project_id": project}
    # Each project's agent state is its own.
    assert sorted(os.listdir(tmp_path / "state" / "projects")) == ["proj-a", "proj-b"]


def test_a_job_cannot_reach_another_projects_tree(tenants, tmp_path):
    a, b = tenants
    root = tmp_path / "tenants"
    src_b = make_tree(root / "proj-b" / "src", files=2)
    # Project A names project B's data and repository: the agent refuses both.
    stolen = a.jobs.create(backup_job(src_b, root / "proj-a" / "repo", name="steal"))
    into_b = a.jobs.create(
        backup_job(make_tree(root / "proj-a" / "src", files=2), root / "proj-b" / "repo")
    )
    agent = multi_agent(tmp_path, all_projects=True)
    agent.start()
    agent.poll()
    for job_id, key in ((stolen, "path_to_backup"), (into_b, "container")):
        (run,) = runs_of(a, job_id)
        assert run["status"] == "fail"
        assert f"{key} " in run["reason"] and "outside the allowed roots" in run["reason"]
    assert not (root / "proj-b" / "repo").exists()


def test_a_projects_key_file_serves_only_that_project(tenants, tmp_path):
    a, b = tenants
    root = tmp_path / "tenants"
    keys = tmp_path / "keys"
    (keys / "proj-b").mkdir(parents=True)
    (keys / "proj-b" / "repo-key").write_text("b's secret passphrase\n")
    # A key file at the top of the operator's key dir is nobody's in a multi-project agent.
    (keys / "repo-key").write_text("the host's passphrase\n")
    job = backup_job(
        make_tree(root / "proj-a" / "src", files=2),
        root / "proj-a" / "repo",
        passphrase_ref="repo-key",
    )
    job_id = a.jobs.create(job)
    agent = multi_agent(tmp_path, all_projects=True, config={"key_dir": str(keys)})
    agent.start()
    agent.poll()
    (run,) = runs_of(a, job_id)
    assert run["status"] == "fail" and "repo-key" in run["reason"]
    assert not (root / "proj-a" / "repo").exists()


def test_explicit_projects_get_the_host_registered(agent_db, tmp_path):
    agent = multi_agent(tmp_path, project_ids=["proj-x", "proj-y"])
    assert agent.start() == ["proj-x", "proj-y"]
    for project in ("proj-x", "proj-y"):
        client = embedded_client("someone", project)
        assert client.clients.get(HOST)["client"]["hostname"] == HOST


def test_a_project_registering_later_is_served_from_the_next_poll(tenants, tmp_path):
    agent = multi_agent(tmp_path, all_projects=True)
    assert agent.start() == ["proj-a", "proj-b"]
    late = embedded_client("carol", "proj-c")
    late.clients.create({"client_id": HOST, "hostname": HOST})
    root = tmp_path / "tenants" / "proj-c"
    job_id = late.jobs.create(backup_job(make_tree(root / "src", files=2), root / "repo"))
    assert agent.poll()["proj-c"] == [job_id]


def test_cli_refuses_all_projects_in_remote_mode():
    done = subprocess.run(
        [sys.executable, "-m", "freezer_ui.agent", "run", "--mode=remote", "--all-projects"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--all-projects and several --project-id need --mode embedded" in done.stderr


def test_cli_one_process_serves_every_registered_project(tenants, agent_db, tmp_path):
    """The command demo/run.py starts: `freezer_ui.cli run --all-projects` (here --once)."""
    a, b = tenants
    root = tmp_path / "tenants"
    jobs = {}
    for client, project, client_id in ((a, "proj-a", HOST), (b, "proj-b", f"proj-b_{HOST}")):
        job = backup_job(make_tree(root / project / "src", files=2), root / project / "repo")
        job["client_id"] = client_id
        jobs[project] = client.jobs.create(job)
    env = {**os.environ, "FREEZER_UI_AGENT_TEST_DB": str(agent_db), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "freezer_ui.cli",
            "run",
            "--mode=embedded",
            "--settings=tests.agent.agent_settings",
            "--all-projects",
            f"--client-id={HOST}",
            f"--hostname={HOST}",
            f"--state-dir={tmp_path / 'state'}",
            f"--allowed-root={root}/{{project_id}}",
            "--once",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for client, project in ((a, "proj-a"), (b, "proj-b")):
        assert schedule_of(client, jobs[project])["result"] == "success"
        (run,) = runs_of(client, jobs[project])
        assert run["project_id"] == project
