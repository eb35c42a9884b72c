"""Action dispatch beyond our own engines: upstream Freezer backups (the legacy plugin) and
upstream's ``exec`` action, through real jobs run by a real agent."""

import shutil
import sys

import pytest

from tests.agent.conftest import HOST, runs_of, schedule_of
from tests.legacy.helpers import FIXTURES, expected, snapshot


def job_of(*actions):
    return {
        "client_id": HOST,
        "job_schedule": {},
        "job_actions": [{"freezer_action": a, "max_retries": 0} for a in actions],
    }


def legacy_restore(container, doc, target):
    return {
        "action": "restore",
        "freezer_ui_format": "freezer-legacy",
        "storage": "local",
        "container": str(container),
        "backup_name": doc["backup_name"],
        "hostname": doc["hostname"],
        "restore_abs_path": str(target),
    }


@pytest.fixture
def legacy_world(tmp_path):
    root = tmp_path / "allowed"
    container = root / "containers" / "tar-bzip2"
    shutil.copytree(FIXTURES / "tar-bzip2", container)
    return root, container, expected("tar-bzip2")


def test_a_legacy_restore_job_goes_to_the_legacy_plugin(api, make_agent, legacy_world):
    root, container, doc = legacy_world
    agent = make_agent(allowed_roots=(str(root),))
    target = root / "restored"
    job_id = api.jobs.create(job_of(legacy_restore(container, doc, target)))
    assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success"
    assert snapshot(target) == doc["generations"][-1]["tree"]
    (run,) = runs_of(api, job_id)
    summary = run["summary"]
    assert summary["format"] == "freezer-legacy" and summary["target"] == str(target)
    assert summary["files"] > 0 and summary["bytes"] > 0 and summary["duration"] >= 0
    # Upstream streams have no content hashes: the run must not claim a verification.
    assert summary["verified"] is False


def test_a_legacy_job_is_refused_while_the_plugin_is_missing(
    api, make_agent, legacy_world, monkeypatch
):
    root, container, doc = legacy_world
    # As if freezer_ui/agent/legacy_action.py were not installed (None blocks the import).
    monkeypatch.setitem(sys.modules, "freezer_ui.agent.legacy_action", None)
    agent = make_agent(allowed_roots=(str(root),))
    target = root / "restored"
    job_id = api.jobs.create(job_of(legacy_restore(container, doc, target)))
    assert agent.poll() == [job_id]
    schedule = schedule_of(api, job_id)
    assert schedule["result"] == "fail" and schedule["status"] == "stop"  # refused: no retry
    (run,) = runs_of(api, job_id)
    assert "cannot handle backups of the upstream Freezer agent" in run["reason"]
    assert run["actions"][0]["result"] == "refused"
    assert not target.exists()


def test_admin_legacy_import_goes_to_the_plugin(api, make_agent, legacy_world):
    root, container, doc = legacy_world
    agent = make_agent(allowed_roots=(str(root),))
    repo = root / "ours"
    action = {
        "action": "admin",
        "legacy_import": True,
        "storage": "local",
        "container": str(container),
        "backup_name": doc["backup_name"],
        "hostname": doc["hostname"],
        "repository": str(repo),
    }
    job_id = api.jobs.create(job_of(action))
    assert agent.poll() == [job_id]
    (run,) = runs_of(api, job_id)
    assert run["status"] == "success", run["reason"]
    imported = run["actions"][0]["summary"]["imported"]
    assert len(imported) == len(doc["generations"])


def test_exec_is_refused_without_allow_exec(api, make_agent, tmp_path):
    from freezer_ui.api.exceptions import ValidationError

    agent = make_agent()
    marker = tmp_path / "ran"
    exec_job = job_of({"action": "exec", "command": f"touch {marker}"})
    # First fence: the registration does not offer exec, so the API refuses such a job.
    assert "exec" not in api.clients.get(HOST)["client"]["supported_actions"]
    with pytest.raises(ValidationError, match="does not support action 'exec'"):
        api.jobs.create(exec_job)
    # Second fence, the one that matters: a registration claiming exec (another agent of
    # this client, an edited record) still gets the job refused by the agent that runs it.
    api.clients.create(
        {"client_id": HOST, "hostname": HOST, "supported_actions": ["backup", "exec"]}
    )
    job_id = api.jobs.create(exec_job)
    assert agent.poll() == [job_id]
    (run,) = runs_of(api, job_id)
    assert run["status"] == "fail" and "--allow-exec" in run["reason"]
    assert not marker.exists()


def test_exec_runs_without_a_shell_and_logs_its_output(api, make_agent, tmp_path):
    agent = make_agent(allow_exec=True)
    assert "exec" in api.clients.get(HOST)["client"]["supported_actions"]
    marker = tmp_path / "should-not-exist"
    # With a shell, ';' would run touch and $HOME would expand; without one they are words.
    command = f"echo hello $HOME ; touch {marker}"
    job_id = api.jobs.create(job_of({"action": "exec", "command": command}))
    assert agent.poll() == [job_id]
    (run,) = runs_of(api, job_id)
    assert run["status"] == "success", run["reason"]
    assert any(line.endswith(f"| hello $HOME ; touch {marker}") for line in run["log"])
    assert not marker.exists()
    summary = run["actions"][0]["summary"]
    assert summary["exit_status"] == 0 and summary["output_lines"] == 1


def test_exec_failures_and_timeouts_fail_the_run(api, make_agent, tmp_path):
    agent = make_agent(allow_exec=True, exec_timeout=30)
    py = sys.executable
    failing = api.jobs.create(
        job_of({"action": "exec", "command": f"{py} -c 'import sys; print(7); sys.exit(3)'"})
    )
    slow = api.jobs.create(
        job_of({"action": "exec", "command": f"{py} -c 'import time; time.sleep(30)'",
                "timeout": 0.5})
    )  # fmt: skip
    assert sorted(agent.poll()) == sorted([failing, slow])
    (run,) = runs_of(api, failing)
    assert run["status"] == "fail" and "status 3" in run["actions"][0]["error"]
    assert any(line.endswith("| 7") for line in run["log"])
    (run,) = runs_of(api, slow)
    assert run["status"] == "fail" and "timed out after 0.5 s" in run["actions"][0]["error"]
    assert run["duration"] < 20


def test_an_abort_kills_a_running_exec(api, make_agent):
    import threading
    import time

    from django.db import connections

    agent = make_agent(allow_exec=True)
    job_id = api.jobs.create(
        job_of({"action": "exec", "command": f"{sys.executable} -c 'import time; time.sleep(60)'"})
    )

    def abort_soon():
        try:
            time.sleep(1.0)
            api.jobs.abort(job_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=abort_soon)
    began = time.monotonic()
    thread.start()
    assert agent.poll() == [job_id]
    thread.join()
    assert time.monotonic() - began < 30
    (run,) = runs_of(api, job_id)
    assert run["status"] == "aborted"
    assert schedule_of(api, job_id)["result"] == "aborted"


def test_action_context_repr_hides_the_passphrase() -> None:
    from freezer_ui.agent.actions import ActionContext

    ctx = ActionContext(
        agent=None,
        job={},
        action={},
        control=None,
        log=None,
        current={},
        started=0,
        passphrase="s3cret-value",
    )
    assert "s3cret-value" not in repr(ctx)
    assert ctx.passphrase == "s3cret-value"
