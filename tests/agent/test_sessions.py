"""Jobs in a freezer-api session: the agent starts and ends the session's round around a run."""

import time

from tests.agent.conftest import backup_job, make_tree, runs_of, schedule_of


def session_with_jobs(api, tmp_path, count=2):
    session_id = api.sessions.create({"description": "together", "schedule": {}})
    jobs = []
    for i in range(count):
        src = make_tree(tmp_path / f"src{i}", files=2, seed=i)
        job_id = api.jobs.create(backup_job(src, tmp_path / f"repo{i}", schedule={}))
        api.sessions.add_job(session_id, job_id)
        jobs.append(job_id)
    return session_id, jobs


def test_a_sessions_jobs_run_in_one_round_and_close_it(api, make_agent, tmp_path):
    agent = make_agent()
    session_id, jobs = session_with_jobs(api, tmp_path)
    assert sorted(agent.poll()) == sorted(jobs)
    session = api.sessions.get(session_id)
    # The first job started round 1, the second joined it within the hold-off window.
    assert session["session_tag"] == 1
    assert session["status"] == "completed" and session["result"] == "success"
    for job_id in jobs:
        assert session["jobs"][job_id]["status"] == "completed"
        assert session["jobs"][job_id]["result"] == "success"
        assert api.jobs.get(job_id)["session_tag"] == 1
        assert runs_of(api, job_id)[0]["status"] == "success"


def test_hold_off_and_out_of_sync_wait_for_the_next_round(api, make_agent, tmp_path):
    agent = make_agent()
    session_id, (first, second) = session_with_jobs(api, tmp_path)
    agent.poll()
    # Start the first job again at once: the round it is in started moments ago (hold-off).
    api.jobs.start(first)
    assert agent.poll() == []
    assert api.sessions.get(session_id)["session_tag"] == 1
    assert len(runs_of(api, first)) == 1
    # Once the hold-off window has passed, it starts round 2.
    api.sessions.update(session_id, {"time_start": int(time.time()) - 3600})
    assert agent.poll() == [first]
    assert api.sessions.get(session_id)["session_tag"] == 2
    assert schedule_of(api, first)["result"] == "success"
    # The second job, still at tag 1 after round 2's window: out of sync, brought to tag 2
    # without running; the next poll starts round 3 with it.
    api.sessions.update(session_id, {"time_start": int(time.time()) - 3600})
    api.jobs.start(second)
    assert agent.poll() == []
    assert api.jobs.get(second)["session_tag"] == 2
    assert agent.poll() == [second]
    assert api.sessions.get(session_id)["session_tag"] == 3
    assert len(runs_of(api, second)) == 2
