"""The agent against the embedded API: real sqlite file, real tar engine, tmp repositories."""

import filecmp
import os
import threading

import pytest

from freezer_ui.repository import Repository
from freezer_ui.storage import get_storage
from tests.agent.conftest import (
    HOST,
    backup_job,
    backups_of,
    embedded_client,
    make_tree,
    runs_of,
    schedule_of,
)


def open_repo(path):
    return Repository.open(get_storage(str(path)))


def same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(same_tree(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


def test_agent_registers_its_capabilities(api, make_agent):
    make_agent()
    client = api.clients.get(HOST)["client"]
    assert client["hostname"] == HOST
    assert "tar" in client["supported_engines"]
    assert "local" in client["supported_storages"]
    assert set(client["supported_actions"]) == {"backup", "restore", "admin", "info"}


def test_scheduled_job_runs_records_a_backup_and_restores(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = make_tree(tmp_path / "src"), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))

    assert agent.poll() == [job_id]
    schedule = schedule_of(api, job_id)
    assert schedule["status"] == "scheduled"  # "1 days": runs again tomorrow
    assert schedule["result"] == "success"
    assert schedule["time_ended"] >= schedule["time_started"] > 0
    # Not due again before the interval.
    assert agent.poll() == []

    (record,) = backups_of(api, job_id)
    meta = record["backup_metadata"]
    assert record["status"] == "available"
    assert meta["backup_name"] == "data" and meta["hostname"] == HOST
    assert meta["container"] == str(repo) and meta["engine_name"] == "tar"
    assert meta["curr_backup_level"] == 0 and meta["time_stamp"] == schedule["time_started"]
    assert meta["files"] >= 20 and meta["size"] == 20 * 4096
    assert meta["new_bytes"] == 20 * 4096 and meta["stored_bytes"] > 0
    assert meta["dedup_ratio"] == 0.0
    assert meta["progress"]["files_done"] >= 20 and meta["progress"]["finished"]
    repository = open_repo(repo)
    (gen,) = repository.generations()
    assert meta["generation_id"] == gen.id

    (run,) = runs_of(api, job_id)
    assert run["status"] == "success"
    assert run["actions"][0]["summary"]["generation_id"] == gen.id
    assert any("generation" in line for line in run["log"])

    # A restore job (no schedule: runs once) brings the tree back.
    target = tmp_path / "restored"
    restore_id = api.jobs.create(
        {
            "client_id": HOST,
            "job_schedule": {},
            "job_actions": [
                {
                    "freezer_action": {
                        "action": "restore",
                        "backup_name": "data",
                        "restore_abs_path": str(target),
                        "storage": "local",
                        "container": str(repo),
                    }
                }
            ],
        }
    )
    assert agent.poll() == [restore_id]
    assert schedule_of(api, restore_id)["status"] == "completed"
    assert schedule_of(api, restore_id)["result"] == "success"
    assert same_tree(src, target)
    assert os.readlink(target / "link") == "d0"
    assert agent.poll() == []


def test_start_stop_events(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = make_tree(tmp_path / "src", files=3), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))
    assert agent.poll() == [job_id]
    first = schedule_of(api, job_id)["time_started"]

    assert api.jobs.start(job_id) == "success"  # run now, ahead of the interval
    assert agent.poll() == [job_id]
    schedule = schedule_of(api, job_id)
    assert schedule["event"] == "" and schedule["status"] == "scheduled"
    assert schedule["time_started"] >= first
    assert len(open_repo(repo).generations()) == 2

    api.jobs.stop(job_id)
    assert agent.poll() == []
    schedule = schedule_of(api, job_id)
    assert schedule["status"] == "stop" and schedule["event"] == ""
    api.jobs.update(job_id, {"job_schedule": {**schedule, "schedule_interval": "1 seconds"}})
    assert agent.poll() == []  # stopped: even a due job does not run

    api.jobs.start(job_id)
    assert agent.poll() == [job_id]
    assert len(open_repo(repo).generations()) == 3


def test_abort_mid_backup_leaves_a_valid_repository(api, make_agent, tmp_path):
    src, repo = make_tree(tmp_path / "src", files=200, size=2048), tmp_path / "repo"
    aborted = threading.Event()
    job_ids = []

    def hook(snapshot):
        # The user presses "abort" once the backup is under way.
        if snapshot.files_done >= 5 and not aborted.is_set():
            aborted.set()
            embedded_client().jobs.abort(job_ids[0])

    # progress_interval 0: the agent re-reads the job at every file, so the abort is seen at
    # the next file whatever the engine's speed.
    agent = make_agent(progress_hook=hook, progress_interval=0)
    job_ids.append(api.jobs.create(backup_job(src, repo)))
    assert agent.poll() == job_ids
    assert aborted.is_set()

    schedule = schedule_of(api, job_ids[0])
    assert schedule["result"] == "aborted"
    assert schedule["status"] == "stop" and schedule["event"] == ""
    repository = open_repo(repo)
    assert repository.generations() == []  # nothing half-made is visible
    assert repository.verify().ok
    assert backups_of(api, job_ids[0]) == []  # the "creating" record went away
    (run,) = runs_of(api, job_ids[0])
    assert run["status"] == "aborted"

    # The next run starts from a valid repository and succeeds.
    api.jobs.start(job_ids[0])
    assert agent.poll() == job_ids
    assert schedule_of(api, job_ids[0])["result"] == "success"
    repository = open_repo(repo)
    assert len(repository.generations()) == 1
    assert repository.verify().ok


def test_unsupported_engine_is_refused_with_a_reason(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = make_tree(tmp_path / "src", files=2), tmp_path / "repo"
    # freezer-api does not check engine_name: the job is accepted, the agent refuses it.
    job_id = api.jobs.create(backup_job(src, repo, engine_name="zfs"))
    assert agent.poll() == [job_id]
    schedule = schedule_of(api, job_id)
    assert schedule["result"] == "fail"
    assert schedule["status"] == "stop"  # not retried every interval until edited
    (run,) = runs_of(api, job_id)
    assert "does not support engine 'zfs'" in run["reason"]
    assert run["actions"][0]["attempts"] == 1
    (record,) = backups_of(api, job_id)
    assert record["status"] == "error"
    assert "does not support engine 'zfs'" in record["backup_metadata"]["error"]
    assert not (repo / "config").exists()
    assert agent.poll() == []


def test_failed_action_is_retried_then_mandatory_actions_still_run(api, make_agent, tmp_path):
    agent = make_agent()
    repo = tmp_path / "repo"
    missing = tmp_path / "does-not-exist"
    job = backup_job(missing, repo, schedule={})
    job["job_actions"][0]["max_retries"] = 2
    job["job_actions"].append(  # skipped: not mandatory, after a failure
        {"freezer_action": {"action": "info", "storage": "local", "container": str(repo)}}
    )
    job["job_actions"].append(
        {
            "freezer_action": {"action": "info", "storage": "local", "container": str(repo)},
            "mandatory": True,
        }
    )
    job_id = api.jobs.create(job)
    assert agent.poll() == [job_id]
    schedule = schedule_of(api, job_id)
    assert schedule["result"] == "fail" and schedule["status"] == "completed"
    (run,) = runs_of(api, job_id)
    first, skipped, mandatory = run["actions"]
    assert first["result"] == "fail" and first["attempts"] == 3
    assert "cannot back up" in first["error"]
    assert skipped["result"] == "skipped"
    assert mandatory["result"] == "success"


def test_passphrase_comes_from_a_key_file_never_the_job(api, make_agent, tmp_path, caplog):
    agent = make_agent()
    secret = "correct horse battery staple"
    key = os.path.join(agent.key_dir, "repo-key")
    with open(key, "w") as f:
        f.write(secret + "\n")
    src, repo = make_tree(tmp_path / "src", files=2), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo, passphrase_ref="repo-key"))
    with caplog.at_level("DEBUG"):
        assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success"
    repository = Repository.open(get_storage(str(repo)), passphrase=secret)
    assert repository.encrypted and len(repository.generations()) == 1
    assert secret not in caplog.text
    assert secret not in str(api.jobs.get(job_id))
    assert secret not in str(runs_of(api, job_id))
    # The record names the reference (the dashboard opens the repository with it), never
    # the secret; the generation says whose it is.
    (record,) = backups_of(api, job_id)
    assert record["backup_metadata"]["passphrase_ref"] == "repo-key"
    assert secret not in str(record)
    assert repository.generations()[0].labels == {"project_id": "proj-a"}
    # A reference may only name a file in the key dir.
    bad = api.jobs.create(backup_job(src, repo, passphrase_ref="../../etc/passwd"))
    assert agent.poll() == [bad]
    (run,) = runs_of(api, bad)
    assert "bad passphrase_ref" in run["reason"]


def test_admin_action_forgets_and_prunes(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = make_tree(tmp_path / "src", files=3), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))
    for _ in range(3):
        api.jobs.start(job_id)
        assert agent.poll() == [job_id]
        (src / "d0" / "f0.bin").write_bytes(os.urandom(4096))  # each generation differs
    assert len(open_repo(repo).generations()) == 3
    admin_id = api.jobs.create(
        {
            "client_id": HOST,
            "job_schedule": {},
            "job_actions": [
                {
                    "freezer_action": {
                        "action": "admin",
                        "backup_name": "data",
                        "keep_last": 1,
                        "storage": "local",
                        "container": str(repo),
                    }
                }
            ],
        }
    )
    assert agent.poll() == [admin_id]
    assert schedule_of(api, admin_id)["result"] == "success"
    repository = open_repo(repo)
    assert len(repository.generations()) == 1
    assert repository.verify().ok
    (run,) = runs_of(api, admin_id)
    assert len(run["actions"][0]["summary"]["forgotten"]) == 2


def test_unparsable_schedule_stops_the_job_with_a_reason(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = make_tree(tmp_path / "src", files=1), tmp_path / "repo"
    # Valid for freezer-api (a free string) but not a cron expression.
    job_id = api.jobs.create(backup_job(src, repo, schedule={"schedule_hour": "25"}))
    assert agent.poll() == []
    schedule = schedule_of(api, job_id)
    assert schedule["status"] == "stop" and schedule["result"] == "fail"
    (run,) = runs_of(api, job_id)
    assert "schedule_hour" in run["reason"]
    assert not (repo / "config").exists()


def test_start_during_a_run_waits_for_it_and_is_not_run_twice(api, make_agent, tmp_path):
    src, repo = make_tree(tmp_path / "src", files=20), tmp_path / "repo"
    job_ids, seen = [], []
    other = make_agent("other")

    def hook(snapshot):
        if snapshot.files_done >= 2 and not seen:
            # The user presses "start" while the run is going; it clears job_schedule.status.
            assert embedded_client().jobs.start(job_ids[0]) == "success"
            seen.append(embedded_client().jobs.get(job_ids[0])["job_schedule"])
            seen.append(other.poll())  # a second agent of this client must not start it

    agent = make_agent(progress_hook=hook)
    job_ids.append(api.jobs.create(backup_job(src, repo)))
    assert agent.poll() == job_ids
    schedule_during, other_ran = seen
    assert schedule_during["status"] == "" and schedule_during["event"] == "start"
    assert other_ran == []
    assert len(open_repo(repo).generations()) == 1
    # The start requested during the run is honoured once it ended.
    assert schedule_of(api, job_ids[0])["event"] == "start"
    assert agent.poll() == job_ids
    assert len(open_repo(repo).generations()) == 2
    assert agent.poll() == [] and other.poll() == []


@pytest.mark.parametrize("where", ["source", "symlinked source", "container", "restore target"])
def test_paths_outside_the_allowed_roots_are_refused(api, make_agent, tmp_path, where):
    # A job can reach the agent through freezer-api without passing the panels' check, so the
    # agent refuses on its own: nothing is read, no repository is made, nothing is written.
    root = tmp_path / "allowed"
    outside = make_tree(tmp_path / "outside", files=2)
    inside = make_tree(root / "src", files=2)
    repo = root / "repo"
    agent = make_agent(allowed_roots=(str(root),))
    if where == "source":
        job = backup_job(outside, repo)
    elif where == "symlinked source":
        (root / "link").symlink_to(outside)
        job = backup_job(root / "link", repo)
    elif where == "container":
        repo = tmp_path / "repo-outside"
        job = backup_job(inside, repo)
    else:
        job = backup_job(inside, repo)
        job["job_actions"] = [
            {
                "freezer_action": {
                    "action": "restore",
                    "backup_name": "data",
                    "storage": "local",
                    "container": str(repo),
                    "restore_abs_path": str(tmp_path / "restored"),
                }
            }
        ]
    job_id = api.jobs.create(job)
    assert agent.poll() == [job_id]
    schedule = schedule_of(api, job_id)
    assert schedule["result"] == "fail"
    (run,) = runs_of(api, job_id)
    assert "outside the allowed roots" in run["reason"]
    assert not (repo / "config").exists()
    assert not (tmp_path / "restored").exists()


def test_a_rerun_reports_percent_against_the_previous_generation(api, make_agent, tmp_path):
    # The tar engine streams the tree with no counting pass: the first run knows no total; the
    # next one takes the previous generation's size as its estimate, so percent and ETA exist.
    snapshots = []
    agent = make_agent(progress_hook=snapshots.append)
    src, repo = make_tree(tmp_path / "src", files=12), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))
    assert agent.poll() == [job_id]
    assert snapshots and all(s.bytes_total is None for s in snapshots)
    first = open_repo(repo).generations()[0].stats

    snapshots.clear()
    (src / "d0" / "f0.bin").write_bytes(os.urandom(4096))
    assert api.jobs.start(job_id) == "success"
    assert agent.poll() == [job_id]
    assert snapshots and {s.bytes_total for s in snapshots} == {first["bytes_total"]}
    assert snapshots[-1].fraction == 1.0 and snapshots[-1].eta == 0.0
    (run, _) = runs_of(api, job_id)
    assert run["progress"]["percent"] == 100.0
