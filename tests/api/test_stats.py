"""freezer_ui.api.stats against real records in the embedded store (sqlite).

Every expected number is computed from the records the test itself creates; the scan path
(the remote transport's way: paging through backup_list/job_list) is run over the same records
and must give the same answer as the SQL path.
"""

import pytest

from freezer_ui.api import freezer as api
from freezer_ui.api import stats
from freezer_ui.api.exceptions import Forbidden
from tests.api.conftest import HOST, job_doc
from tests.api.test_freezer import make_request

DAY = stats.DAY
# A fixed "now" in the middle of a UTC day (2026-11-26 12:00:00 UTC).
NOW = 1795694400
TODAY = NOW // DAY * DAY


def add_backup(request, stamp, status="available", **meta):
    doc = {
        "backup_name": meta.pop("backup_name", "etc"),
        "hostname": meta.pop("hostname", HOST),
        "container": "/srv/backups",
        "time_stamp": stamp,
        "status": status,
        **meta,
    }
    return api.freezerclient(request).backups.create(doc)


@pytest.fixture
def member(db):
    return make_request(project="proj-a", user="alice")


@pytest.fixture
def admin(db):
    return make_request(project="admin-proj", user="root", roles=("admin", "member"))


@pytest.fixture
def scan_only(monkeypatch):
    """Run the remote transport's code path (paging through freezer.py) over the same store."""
    monkeypatch.setattr(stats, "_database", lambda client: None)


@pytest.fixture
def records(member):
    """A month of one project's backups, plus another project's that must never count."""
    other = make_request(project="proj-b", user="bob")
    add_backup(other, TODAY + 10, size=10**9, stored_bytes=10**9, new_bytes=10**9)
    add_backup(other, TODAY + 20, status="error", error="other project")
    # Before the 30-day window: only its stored bytes count, as the starting level.
    add_backup(member, TODAY - 40 * DAY, size=5000, stored_bytes=700, new_bytes=5000)
    # 29 days ago (the first day of a 30-day window).
    add_backup(member, TODAY - 29 * DAY, size=1000, stored_bytes=300, new_bytes=400)
    # Two days ago: two backups and a failure.
    add_backup(member, TODAY - 2 * DAY + 5, size=2000, stored_bytes=100, new_bytes=200)
    add_backup(member, TODAY - 2 * DAY + 3600, size=2000, stored_bytes=50, new_bytes=300)
    add_backup(member, TODAY - 2 * DAY + 7200, status="error", error="disk <b>full</b>")
    # A record from some other client with text where numbers belong: a backup, no bytes.
    add_backup(member, TODAY - 2 * DAY + 10, size="big", stored_bytes="lots", new_bytes=None)
    # Today: one available backup recorded by the upstream Freezer agent's field names, and
    # one still being written (neither a success nor a failure yet).
    add_backup(
        member,
        TODAY + 100,
        backup_size_uncompressed=4000,
        backup_size_compressed=1000,
        new_bytes=0,
    )
    add_backup(member, TODAY + 200, status="creating", size=9999, stored_bytes=9999)
    return member


@pytest.mark.parametrize("path", ["sql", "scan"])
def test_usage_series_equals_the_records(records, request, path):
    if path == "scan":
        request.getfixturevalue("scan_only")
    usage = stats.project_usage(records, days=30, now=NOW)
    assert (usage["days"], usage["empty"], usage["complete"]) == (30, False, True)
    series = usage["series"]
    assert len(series) == 30
    assert series[0]["time"] == TODAY - 29 * DAY
    assert series[-1]["date"] == "2026-11-26" and usage["end"] == "2026-11-26"
    first, two_ago, today = series[0], series[-3], series[-1]
    # Run counts come from the run history, which only the embedded store keeps.
    no_runs = (
        {"runs_success": 0, "runs_fail": 0}
        if path == "sql"
        else {
            "runs_success": None,
            "runs_fail": None,
        }
    )
    assert {k: first.pop(k) for k in ("runs_success", "runs_fail")} == no_runs
    assert first == {
        "date": "2026-10-28",
        "time": TODAY - 29 * DAY,
        "stored_bytes": 700 + 300,
        "new_bytes": 400,
        "size": 1000,
        "dedup_ratio": 0.6,
        "success": 1,
        "fail": 0,
    }
    assert two_ago["stored_bytes"] == 700 + 300 + 100 + 50
    assert (two_ago["new_bytes"], two_ago["size"]) == (500, 4000)
    assert two_ago["dedup_ratio"] == pytest.approx(1 - 500 / 4000)
    assert (two_ago["success"], two_ago["fail"]) == (1 + 1 + 1, 1)
    # Days without backups keep the level and have no ratio.
    assert series[-2]["stored_bytes"] == two_ago["stored_bytes"]
    assert series[-2]["dedup_ratio"] is None
    assert today["stored_bytes"] == 700 + 300 + 150 + 1000
    assert (today["size"], today["new_bytes"], today["dedup_ratio"]) == (4000, 0, 1.0)
    assert (today["success"], today["fail"]) == (1, 0)
    # Nothing of proj-b: its 1 GB and its failure are in no day.
    assert sum(p["fail"] for p in series) == 1
    assert max(p["stored_bytes"] for p in series) < 10**9


def test_run_counts_per_day_from_the_run_history(member):
    """Finished runs per UTC day, of every kind, from the agent's JobRun rows (filed directly
    here: they are the agent's, and this is what it leaves behind)."""
    import datetime

    from freezer_ui import models

    def run(run_id, status, stamp, project="proj-a"):
        models.JobRun.objects.create(
            id=run_id,
            project_id=project,
            user_id="agent",
            job_id="job-1",
            status=status,
            created_at=datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC),
            doc={"run_id": run_id, "job_id": "job-1", "status": status, "started": stamp},
        )

    run("a", "success", TODAY)  # the first second of today
    run("b", "fail", TODAY + 3600)
    run("c", "interrupted", TODAY - 1)  # the last second of yesterday
    run("d", "running", TODAY + 60)  # not finished: neither
    run("e", "success", TODAY - 3 * DAY, project="proj-b")  # not this project's
    run("f", "success", TODAY - 7 * DAY)  # before a 7-day window
    series = stats.project_usage(member, days=7, now=NOW)["series"]
    assert [(p["runs_success"], p["runs_fail"]) for p in series] == [(0, 0)] * 5 + [
        (0, 1),
        (1, 1),
    ]


def test_usage_of_an_empty_project(member):
    usage = stats.project_usage(member, days=7, now=NOW)
    assert usage["empty"] is True
    assert [p["stored_bytes"] for p in usage["series"]] == [0] * 7
    assert all(p["dedup_ratio"] is None for p in usage["series"])


def test_usage_refuses_a_silly_range(member):
    for days in (0, -1, 367):
        with pytest.raises(ValueError):
            stats.project_usage(member, days=days, now=NOW)


@pytest.mark.parametrize("path", ["sql", "scan"])
def test_recent_failures_window_edges(member, request, path):
    if path == "scan":
        request.getfixturevalue("scan_only")
    add_backup(member, NOW - 7 * DAY, status="error", error="oldest kept")
    add_backup(member, NOW - 7 * DAY - 1, status="error", error="one second too old")
    add_backup(member, NOW - 60, status="error", error="newest", backup_name="db")
    add_backup(member, NOW - 30, status="available")
    add_backup(make_request(project="proj-b"), NOW - 10, status="error", error="not yours")
    failures = stats.recent_failures(member, days=7, now=NOW)
    assert [f["error"] for f in failures] == ["newest", "oldest kept"]
    assert failures[0]["backup_name"] == "db"
    assert failures[0]["project_id"] == "proj-a"
    assert stats.recent_failures(member, days=7, now=NOW, limit=1)[0]["error"] == "newest"


def test_runs_from_job_documents(member):
    api.client_create(member, {"client_id": HOST, "hostname": HOST})
    done = api.job_create(member, job_doc(description="done"))
    failed = api.job_create(member, job_doc(description="failed"))
    running = api.job_create(member, job_doc(description="running"))
    api.job_create(member, job_doc(description="never ran"))
    schedule = {"schedule_interval": "6 hours"}
    api.job_update(
        member,
        done,
        {
            "job_schedule": {
                **schedule,
                "status": "completed",
                "result": "success",
                "time_started": NOW - 300,
                "time_ended": NOW - 100,
            }
        },
    )
    api.job_update(
        member,
        failed,
        {
            "job_schedule": {
                **schedule,
                "status": "stop",
                "result": "fail",
                "time_started": NOW - 1000,
                "time_ended": NOW - 900,
            }
        },
    )
    # Running again: time_ended is the previous run's, older than this start.
    api.job_update(
        member,
        running,
        {
            "job_schedule": {
                **schedule,
                "status": "running",
                "result": "",
                "time_started": NOW - 50,
                "time_ended": NOW - 5000,
            }
        },
    )
    store = api.freezerclient(member)
    if hasattr(store, "job_runs"):
        # With the agent's run history, recent_runs reads it (oldest created first here, as
        # the agent would have filed them); the job documents are the fallback otherwise.
        for run_id, job_id, status, started, ended in (
            ("r1", failed, "fail", NOW - 1000, NOW - 900),
            ("r2", done, "success", NOW - 300, NOW - 100),
            ("r3", running, "running", NOW - 50, None),
        ):
            store.job_runs.create(
                {
                    "run_id": run_id,
                    "job_id": job_id,
                    "status": status,
                    "started": started,
                    "ended": ended,
                }
            )
    runs = stats.recent_runs(member, limit=10)
    assert [(r["job"], r["status"]) for r in runs] == [
        ("running", "running"),
        ("done", "success"),
        ("failed", "fail"),
    ]
    assert runs[0]["ended"] is None and runs[0]["duration"] is None
    assert runs[1]["duration"] == 200
    assert runs[1]["started"] == NOW - 300
    jobs, _more = api.job_list(member, limit=50)
    assert [r["job"] for r in stats.runs_from_jobs(jobs, limit=2)] == ["running", "done"]


@pytest.mark.parametrize("path", ["sql", "scan"])
def test_project_totals(records, admin, request, path):
    if path == "scan":
        request.getfixturevalue("scan_only")
    api.client_create(records, {"client_id": HOST, "hostname": HOST})
    job_id = api.job_create(records, job_doc())
    api.job_update(
        records,
        job_id,
        {"job_schedule": {"schedule_interval": "6 hours", "status": "running", "time_started": 1}},
    )
    api.job_create(records, job_doc())
    # Failure window edges, in proj-a: exactly 7 days old counts, one second older does not.
    add_backup(records, NOW - 7 * DAY, status="error")
    add_backup(records, NOW - 7 * DAY - 1, status="error")
    totals = {t["project_id"]: t for t in stats.project_totals(admin, now=NOW)}
    assert set(totals) == {"proj-a", "proj-b"}
    assert totals["proj-a"] == {
        "project_id": "proj-a",
        "stored_bytes": 700 + 300 + 100 + 50 + 1000,
        "generations": 6,
        "last_success": TODAY + 100,
        "failures": 2,  # two days ago + exactly 7 days ago
        "jobs": 2,
        "running_jobs": 1,
    }
    assert totals["proj-b"] == {
        "project_id": "proj-b",
        "stored_bytes": 10**9,
        "generations": 1,
        "last_success": TODAY + 10,
        "failures": 1,
        "jobs": 0,
        "running_jobs": 0,
    }
    # Most stored first.
    assert [t["project_id"] for t in stats.project_totals(admin, now=NOW)] == ["proj-b", "proj-a"]


def test_project_totals_need_the_admin_role(records):
    with pytest.raises(Forbidden):
        stats.project_totals(records, now=NOW)
    # And the API under it refuses all_projects too.
    with pytest.raises(Forbidden):
        api.backup_list(records, all_projects=True)


def test_sql_path_costs_the_same_queries_for_more_records(
    member, admin, django_assert_max_num_queries
):
    """A fixed number of queries, however many records: aggregation happens in the database."""
    for project in ("p1", "p2", "p3"):
        request = make_request(project=project)
        for i in range(40):
            add_backup(request, NOW - i * 3600, size=10, stored_bytes=1, new_bytes=1)
    with django_assert_max_num_queries(4):
        usage = stats.project_usage(make_request(project="p1"), days=30, now=NOW)
    assert usage["series"][-1]["stored_bytes"] == 40
    with django_assert_max_num_queries(2):
        totals = stats.project_totals(admin, now=NOW)
    assert [t["generations"] for t in totals] == [40, 40, 40]
