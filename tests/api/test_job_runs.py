"""Run history (kind ``job_runs``): embedded transport, client manager, seam and resource."""

import pytest

from freezer_ui.api import freezer as api
from freezer_ui.api import resources
from freezer_ui.api.exceptions import Conflict, Forbidden, NotFound, Unavailable, ValidationError
from freezer_ui.api.transports.remote import RemoteTransport
from tests.api.conftest import job_doc
from tests.api.test_freezer import make_request


def new_run(client, job_id, **fields):
    return client.job_runs.create({"job_id": job_id, "client_id": "host1", **fields})


def test_run_round_trip_and_updates(alice):
    job_id = alice.jobs.create(job_doc())
    run_id = new_run(alice, job_id, started=1000, progress={"phase": "starting"})
    run = alice.job_runs.get(run_id)
    assert (run["run_id"], run["job_id"], run["status"]) == (run_id, job_id, "running")
    assert (run["project_id"], run["user_id"]) == ("proj-a", "alice")

    alice.job_runs.update(run_id, {"progress": {"bytes_done": 10, "bytes_total": 40}})
    alice.job_runs.update(
        run_id,
        {
            "status": "success",
            "ended": 1010,
            "duration": 10,
            "actions": [{"name": "backup", "result": "success", "summary": {"files": 3}}],
            "log": ["line 1", "line 2"],
        },
    )
    run = alice.job_runs.get(run_id)
    # Top-level keys are replaced, the others stay.
    assert run["progress"] == {"bytes_done": 10, "bytes_total": 40}
    assert run["status"] == "success" and run["started"] == 1000 and run["ended"] == 1010
    assert run["actions"][0]["summary"] == {"files": 3}


def test_list_is_per_job_newest_first_and_paged(alice):
    job_a = alice.jobs.create(job_doc())
    job_b = alice.jobs.create(job_doc())
    runs_a = [new_run(alice, job_a, started=i) for i in range(5)]
    run_b = new_run(alice, job_b)

    page = alice.job_runs.list(limit=3, job_id=job_a)
    assert [r["run_id"] for r in page] == runs_a[::-1][:3]
    assert page.has_more
    rest = alice.job_runs.list(limit=3, offset=3, job_id=job_a)
    assert [r["run_id"] for r in rest] == runs_a[::-1][3:]
    assert not rest.has_more
    everything = [r["run_id"] for r in alice.job_runs.list(limit=100)]
    assert everything == [run_b, *runs_a[::-1]]


def test_runs_stay_in_their_project(alice, bob, admin):
    job_id = alice.jobs.create(job_doc())
    run_id = new_run(alice, job_id)
    with pytest.raises(NotFound):
        bob.job_runs.get(run_id)
    with pytest.raises(NotFound):
        bob.job_runs.update(run_id, {"status": "fail"})
    assert list(bob.job_runs.list(job_id=job_id)) == []
    # Nobody files a run under another project's job (nor learns that it exists).
    with pytest.raises(ValidationError) as refused:
        new_run(bob, job_id)
    assert refused.value.errors == {"job_id": f"no job with ID {job_id}"}
    assert alice.job_runs.get(run_id)["status"] == "running"

    with pytest.raises(Forbidden):
        alice.job_runs.list(all_projects=True)
    assert [r["run_id"] for r in admin.job_runs.list(all_projects=True)] == [run_id]
    assert list(admin.job_runs.list()) == []


@pytest.mark.parametrize(
    "fields, path",
    [
        ({"status": "done"}, "status"),
        ({"started": "yesterday"}, "started"),
        ({"progress": {"percent": "half"}}, "progress.percent"),
        ({"actions": [{"result": "success"}]}, "actions.0.name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_runs_are_refused_and_nothing_is_saved(alice, fields, path):
    job_id = alice.jobs.create(job_doc())
    with pytest.raises(ValidationError) as refused:
        new_run(alice, job_id, **fields)
    assert path in refused.value.errors
    assert list(alice.job_runs.list()) == []


def test_a_run_cannot_move_to_another_job(alice):
    job_id = alice.jobs.create(job_doc())
    other = alice.jobs.create(job_doc())
    run_id = new_run(alice, job_id)
    with pytest.raises(ValidationError) as refused:
        alice.job_runs.update(run_id, {"job_id": other, "status": "fail"})
    assert "job_id" in refused.value.errors
    assert alice.job_runs.get(run_id)["status"] == "running"


def test_run_ids_chosen_by_the_agent_are_kept_and_unique(alice):
    job_id = alice.jobs.create(job_doc())
    assert new_run(alice, job_id, run_id="r-1") == "r-1"
    with pytest.raises(Conflict):
        new_run(alice, job_id, run_id="r-1")


def test_seam_functions_return_job_runs(db):
    request = make_request()
    api.client_create(request, {"client_id": "host1", "hostname": "host1"})
    job_id = api.job_create(request, job_doc())
    client = api.freezerclient(request)
    old = new_run(client, job_id, started=100)
    run_id = new_run(
        client,
        job_id,
        status="success",
        started=200,
        ended=230,
        progress={"bytes_done": 5, "phase": "restore"},
        actions=[{"name": "restore", "result": "success", "summary": {"files": 2}}],
        log=["done"],
        summary={"files": 2, "bytes": 5, "duration": 1.5, "verified": True, "target": "/t"},
    )
    runs, more = api.job_run_list(request, job_id, limit=1)
    assert [r.id for r in runs] == [run_id] and more
    runs, more = api.job_run_list(request, job_id=job_id, limit=1, offset=1)
    assert [r.id for r in runs] == [old] and not more
    run = api.job_run_get(request, run_id)
    assert isinstance(run, resources.JobRun)
    assert (run.job_id, run.client_id, run.status, run.started, run.ended) == (
        job_id,
        "host1",
        "success",
        200,
        230,
    )
    assert run.duration == 30  # from the times when the agent wrote none
    assert run.progress["bytes_done"] == 5 and run.progress["phase"] == "restore"
    assert run.progress["eta"] is None  # every documented key is there
    assert run.actions == [{"name": "restore", "result": "success", "summary": {"files": 2}}]
    assert run.log == ["done"] and run.summary["verified"] is True
    with pytest.raises(Forbidden):
        api.job_run_list(request, all_projects=True)


def test_remote_mode_says_it_has_no_run_history():
    transport = RemoteTransport(project_id="p", freezer=object(), endpoint="http://x")
    assert not transport.supports("job_runs") and transport.supports("jobs")
    from freezer_ui.api.client import FreezerClient

    client = FreezerClient(transport, project_id="p", user_id="u")
    assert not client.job_runs.available
    for call in (
        lambda: client.job_runs.list(job_id="j"),
        lambda: client.job_runs.get("r"),
        lambda: client.job_runs.create({"job_id": "j"}),
        lambda: client.job_runs.update("r", {"status": "fail"}),
        lambda: client.job_runs.delete("r"),
    ):
        with pytest.raises(Unavailable, match="freezer-api 19.0.0 stores no job runs"):
            call()
