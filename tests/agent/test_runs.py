"""Run records written by the agent (embedded ``job_runs``): claim, live progress, final state."""

import time

from tests.agent.conftest import HOST, backup_job, make_tree, runs_of, schedule_of


def restore_job(repo, target, **action):
    return {
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
                    **action,
                }
            }
        ],
    }


def spy_run_updates(agent):
    """Record (monotonic time, patch) of every run update the agent sends; still sends it."""
    sent = []
    real = agent.store.update_run

    def update_run(run_id, patch):
        sent.append((time.monotonic(), run_id, patch))
        return real(run_id, patch)

    agent.store.update_run = update_run
    return sent


def slow(seconds):
    return lambda snapshot: time.sleep(seconds)


def test_backup_and_restore_runs_carry_progress_and_outcome(api, make_agent, tmp_path):
    interval = 0.2
    agent = make_agent(progress_interval=interval, progress_hook=slow(0.02))
    sent = spy_run_updates(agent)
    src, repo = make_tree(tmp_path / "src", files=60, size=2048), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))

    seen_running = []

    def watch(snapshot):
        # What the dashboard reads while the backup runs.
        if not seen_running:
            seen_running.extend(runs_of(api, job_id))
        time.sleep(0.02)

    agent.progress_hook = watch
    assert agent.poll() == [job_id]
    (running,) = seen_running
    assert running["status"] == "running" and running["client_id"] == HOST
    assert running["started"] == schedule_of(api, job_id)["time_started"]

    (run,) = runs_of(api, job_id)
    assert run["status"] == "success"
    assert run["ended"] >= run["started"] and run["duration"] == run["ended"] - run["started"]
    (action,) = run["actions"]
    assert action["name"] == "backup" and action["result"] == "success"
    assert action["summary"]["files"] >= 60 and action["summary"]["generation_id"]
    assert any("generation" in line for line in run["log"])
    assert run["progress"]["phase"] == "done" and run["progress"]["files_done"] >= 60

    progress = [
        (t, p["progress"]) for t, r, p in sent if r == run["run_id"] and set(p) == {"progress"}
    ]
    assert len(progress) >= 3, progress
    assert {p["phase"] for _, p in progress} == {"backup"}
    assert progress[-1][1]["files_done"] > progress[0][1]["files_done"]
    assert all(p["percent"] is None or 0 <= p["percent"] <= 100 for _, p in progress)
    # Never more often than --progress-interval.  The spy sees each write after the tick's
    # local state write, whose time varies on a busy machine: hence the tolerances.
    times = [t for t, _ in progress]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= interval / 2, gaps
    assert (len(times) - 1) * interval <= times[-1] - times[0] + 0.05, gaps

    # The restore's run: progress with phase "restore", and what was restored.
    target = tmp_path / "restored"
    sent.clear()
    restore_id = api.jobs.create(restore_job(repo, target))
    agent.progress_hook = slow(0.02)
    assert agent.poll() == [restore_id]
    (run,) = runs_of(api, restore_id)
    assert run["status"] == "success"
    phases = [
        p["progress"]["phase"] for _, r, p in sent if r == run["run_id"] and set(p) == {"progress"}
    ]
    assert phases.count("restore") >= 2, phases
    summary = run["summary"]
    assert summary["target"] == str(target)
    assert summary["files"] >= 60 and summary["bytes"] == 60 * 2048
    assert summary["duration"] > 0 and summary["verified"] is True
    assert run["actions"][0]["summary"]["verified"] is True


def test_a_corrupt_chunk_fails_the_restore_run(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = make_tree(tmp_path / "src", files=5), tmp_path / "repo"
    api.jobs.create(backup_job(src, repo))
    agent.poll()
    for pack in (repo / "data").rglob("*"):
        if pack.is_file():
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0xFF
            pack.write_bytes(bytes(data))
    restore_id = api.jobs.create(restore_job(repo, tmp_path / "restored"))
    assert agent.poll() == [restore_id]
    (run,) = runs_of(api, restore_id)
    assert run["status"] == "fail"
    assert "Corrupt" in run["actions"][0]["error"] or "Corrupt" in run["reason"]
    assert schedule_of(api, restore_id)["result"] == "fail"


def test_admin_and_info_runs_report_their_phase(api, make_agent, tmp_path):
    agent = make_agent(progress_interval=0)
    sent = spy_run_updates(agent)
    src, repo = make_tree(tmp_path / "src", files=3), tmp_path / "repo"
    api.jobs.create(backup_job(src, repo))
    agent.poll()
    job_id = api.jobs.create(
        {
            "client_id": HOST,
            "job_schedule": {},
            "job_actions": [
                {
                    "freezer_action": {
                        "action": kind,
                        "storage": "local",
                        "container": str(repo),
                        **({"keep_last": 1} if kind == "admin" else {}),
                    }
                }
                for kind in ("info", "admin")
            ],
        }
    )
    sent.clear()
    assert agent.poll() == [job_id]
    (run,) = runs_of(api, job_id)
    assert [a["name"] for a in run["actions"]] == ["info", "admin"]
    assert run["status"] == "success"
    phases = [
        p["progress"]["phase"] for _, r, p in sent if r == run["run_id"] and set(p) == {"progress"}
    ]
    assert phases == ["info", "admin"]


def test_history_is_bounded_and_goes_with_the_job(api, make_agent, tmp_path):
    agent = make_agent(history_size=3)
    src, repo = make_tree(tmp_path / "src", files=2), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))
    other = api.jobs.create(backup_job(src, tmp_path / "repo2", name="other"))
    ran = []
    for _ in range(5):
        api.jobs.start(job_id)
        api.jobs.start(other)
        agent.poll()
        ran.append(runs_of(api, job_id)[0]["run_id"])
    assert [r["run_id"] for r in runs_of(api, job_id)] == ran[::-1][:3]
    assert len(runs_of(api, other)) == 3
    api.jobs.delete(job_id)
    assert runs_of(api, job_id) == [] and len(runs_of(api, other)) == 3
