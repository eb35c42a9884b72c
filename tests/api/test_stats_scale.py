"""How freezer_ui.api.stats scales: SQL aggregation against paging through the API.

As a test: a few thousand records, both paths give the same totals and the SQL path is faster.
As a measurement (the numbers in docs/overview.md)::

    PYTHONPATH=. .venv/bin/python -m tests.api.test_stats_scale 100000 100

bulk-loads that many backup records over that many projects into a scratch sqlite file and
times each function (the paging path of the totals only up to 20,000 records: it takes minutes
beyond).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from types import SimpleNamespace

HOUR = 3600


def request_for(project, roles=("member",)):
    user = SimpleNamespace(id="u", project_id=project, roles=[{"name": r} for r in roles])
    return SimpleNamespace(user=user)


def load(records: int, projects: int, now: int) -> None:
    """Backup records spread over 60 days, one in 50 failed, bulk-inserted."""
    from freezer_ui import models
    from freezer_ui.api.search import search_text

    rows = []
    for i in range(records):
        stamp = now - (i % (60 * 24)) * HOUR
        doc = {
            "backup_id": uuid.uuid4().hex,
            "project_id": f"p{i % projects}",
            "user_id": "u",
            "status": "error" if i % 50 == 0 else "available",
            "backup_metadata": {
                "backup_name": "etc",
                "hostname": "host",
                "container": "/srv",
                "time_stamp": stamp,
                "size": 1000,
                "stored_bytes": 100,
                "new_bytes": 200,
            },
        }
        rows.append(
            models.Backup(
                id=doc["backup_id"],
                project_id=doc["project_id"],
                user_id="u",
                doc=doc,
                search_text=search_text(doc),
                time_stamp=stamp,
                status=doc["status"],
            )
        )
    models.Backup.objects.bulk_create(rows, batch_size=5000)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def test_sql_and_paging_agree_and_sql_is_faster(db, monkeypatch):
    from freezer_ui.api import stats

    now = int(time.time())
    load(3000, 10, now)
    admin = request_for("p0", ("admin",))
    stats.project_totals(admin, now=now)  # warm-up (imports, first queries)
    by_sql, sql_time = timed(lambda: stats.project_totals(admin, now=now))
    usage_sql = stats.project_usage(request_for("p3"), 30, now=now)
    monkeypatch.setattr(stats, "_database", lambda client: None)
    by_paging, paging_time = timed(lambda: stats.project_totals(admin, now=now))
    assert by_sql == by_paging
    usage_paging = stats.project_usage(request_for("p3"), 30, now=now)
    for usage in (usage_sql, usage_paging):
        for point in usage["series"]:
            # Run counts exist only where the run history does (embedded), not by paging.
            del point["runs_success"], point["runs_fail"]
    assert usage_paging == usage_sql
    # 300 records a project; every 50th record failed, and those all fall in p0.
    generations = {t["project_id"]: t["generations"] for t in by_sql}
    assert generations == {f"p{i}": 240 if i == 0 else 300 for i in range(10)}
    assert {t["project_id"]: t["stored_bytes"] for t in by_sql}["p0"] == 240 * 100
    assert sql_time * 3 < paging_time, (sql_time, paging_time)


def main(records: int, projects: int) -> None:
    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from freezer_ui.api import stats

    path = os.path.join(tempfile.mkdtemp(prefix="freezer-ui-stats-"), "stats.sqlite3")
    settings.DATABASES["default"]["NAME"] = path
    connection.close()
    connection.settings_dict["NAME"] = path
    call_command("migrate", verbosity=0)
    now = int(time.time())
    load(records, projects, now)
    admin = request_for("p0", ("admin",))
    print(f"{records} backup records, {projects} projects, sqlite file {path}")
    stats.project_usage(request_for("p2"), 30, now=now)  # warm-up
    checks = [
        ("usage, 30 days, one project (SQL)", lambda: stats.project_usage(request_for("p1"), 30)),
        ("failures, 7 days, one project (SQL)", lambda: stats.recent_failures(request_for("p1"))),
        ("totals, all projects (SQL)", lambda: stats.project_totals(admin)),
    ]
    for label, function in checks:
        print(f"{label}: {timed(function)[1] * 1000:.0f} ms")
    stats._database = lambda client: None  # the remote transport's way, over the same rows
    print(
        "usage, 30 days, one project (paging): "
        f"{timed(lambda: stats.project_usage(request_for('p1'), 30))[1] * 1000:.0f} ms"
    )
    if records <= 20000:
        print(f"totals (paging): {timed(lambda: stats.project_totals(admin))[1] * 1000:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
