"""Benchmark: server time of the Backups panel pages with many generations (embedded mode).

    python -m bench.backups_page [--records 10000] [--groups 200] [--repeat 9] [--db file|memory]

Fills the embedded store (the Django models behind the embedded transport; the test settings'
sqlite database, in a file by default) with ``--records`` backup records spread over
``--groups`` backups (backup name x host), then times whole page requests through Django's
test client, logged in as a project member (Horizon's test harness stands in for Keystone):
the groups page (default sort, sorted by name, the last page) and one backup's generations
page (first and last page).  Each figure is the median of ``--repeat`` requests after one
warm-up request; min-max is shown, and the median CPU time of the process (the wall time on a
shared machine includes waiting for a core).

Records are inserted with the same document shape, columns and search text as the embedded
transport writes (``schemas.new_backup`` + ``search.search_text``), in bulk, so filling 10,000
takes seconds instead of minutes.  The numbers are the web server's time for a page: SQL,
Horizon table rendering and templates, not the browser's.  Templates are rendered as
deployed (cached loader, no template debug, no online compression; see ``main``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--groups", type=int, default=200)
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument(
        "--db",
        choices=("memory", "file"),
        default="file",
        help="sqlite in memory, or a file in a temporary directory (default, as deployed)",
    )
    return p.parse_args(argv)


def fill(project_id: str, user_id: str, records: int, groups: int) -> None:
    from django.utils import timezone

    from freezer_ui import conf, models
    from freezer_ui.api import schemas
    from freezer_ui.api.search import search_text

    rng = random.Random(42)
    start = 1_700_000_000
    rows = []
    for i in range(records):
        g = i % groups
        stamp = start + i * 3600
        size = rng.randrange(1 << 30)
        meta = {
            "backup_name": f"backup-{g // 4:03d}",
            "hostname": f"host-{g % 4}",
            "client_id": f"host-{g % 4}",
            "job_id": f"job-{g}",
            "container": f"/srv/backups/{g}",
            "repository": f"local:///srv/backups/{g}",
            "storage": "local",
            "engine_name": "tar",
            "mode": "fs",
            "path_to_backup": f"/data/{g}",
            "time_stamp": stamp,
            "curr_backup_level": 0,
            "level": 0,
            "generation_id": f"{i:032x}",
            "size": size,
            "backup_size_uncompressed": size,
            "stored_bytes": size // 50,
            "backup_size_compressed": size // 50,
            "new_bytes": size // 40,
            "files": rng.randrange(100_000),
            "dedup_ratio": 0.975,
            "freezer_ui_agent": True,
        }
        record = schemas.new_backup(meta, project_id=project_id, user_id=user_id)
        now = timezone.now()
        rows.append(
            models.Backup(
                id=record["backup_id"],
                project_id=project_id,
                user_id=user_id,
                created_at=now,
                updated_at=now,
                doc=record,
                search_text=search_text(record),
                client_id=meta["client_id"],
                time_stamp=stamp,
                status=record["status"],
            )
        )
    models.Backup.objects.using(conf.database_alias()).bulk_create(rows, batch_size=1000)


def timed(client, url: str, repeat: int) -> tuple[float, float, float, float, int]:
    """Median, min and max wall time, median CPU time of this process, response size."""
    response = client.get(url)  # warm-up: Horizon's first render compiles templates
    assert response.status_code == 200, (url, response.status_code)
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert response.status_code == 200, (url, response.status_code)
    return (
        statistics.median(times),
        min(times),
        max(times),
        statistics.median(cpu),
        len(response.content),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    sys.path.insert(0, ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    django.setup()
    # Production-like rendering: the test settings re-parse every template per request (no
    # cached loader, template debug on) and compress Horizon's JS/CSS online on every page;
    # a deployment caches templates and compresses offline once (``manage.py compress``).
    # Measured as deployed, so the numbers say what this panel costs, not what the harness does.
    template = settings.TEMPLATES[0]
    template["OPTIONS"]["debug"] = False
    template["OPTIONS"]["loaders"] = [
        ("django.template.loaders.cached.Loader", template["OPTIONS"]["loaders"])
    ]
    settings.COMPRESS_ENABLED = False
    settings.ALLOWED_HOSTS = ["testserver"]
    tmp = tempfile.mkdtemp(prefix="freezer-ui-bench-")
    if args.db == "file":
        from django.db import connections

        connections.databases["default"]["TEST"]["NAME"] = os.path.join(tmp, "bench.sqlite3")

    from django.test.runner import DiscoverRunner
    from django.urls import reverse

    from freezer_ui.api import backup_groups
    from tests.dashboards import helpers

    results: list[tuple[str, float, float, float, float, int]] = []

    class Bench(helpers.TestCase):
        def test_pages(self):
            t0 = time.perf_counter()
            fill(self.tenant.id, self.user.id, args.records, args.groups)
            fill_time = time.perf_counter() - t0
            print(
                f"filled {args.records} records in {args.groups} groups "
                f"({args.db} sqlite) in {fill_time:.1f}s"
            )
            index = reverse("horizon:project:freezer_backups:index")
            page_size = 20
            last = (args.groups - 1) // page_size * page_size
            from openstack_auth import utils as auth_utils

            self.request.user = auth_utils.get_user(self.request)
            groups, _ = backup_groups.backup_group_list(self.request, limit=1)
            group_url = reverse("horizon:project:freezer_backups:group", args=[groups[0].id])
            per_group = groups[0].generations
            last_gen = (per_group - 1) // page_size * page_size
            for label, url in (
                ("groups page (newest first)", index),
                ("groups page sorted by name", index + "?sort=backup_name&dir=asc"),
                ("groups page, last page", index + f"?offset={last}"),
                (f"generations page ({per_group} in the group)", group_url),
                ("generations page, last page", group_url + f"?offset={last_gen}"),
            ):
                results.append((label, *timed(self.client, url, args.repeat)))
            # The API call alone, without Horizon's rendering.
            times, cpu = [], []
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                backup_groups.backup_group_list(self.request, limit=page_size)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            results.append(
                (
                    "backup_group_list() alone",
                    statistics.median(times),
                    min(times),
                    max(times),
                    statistics.median(cpu),
                    0,
                )
            )

    # No setup_test_environment(): it instruments every template render for the test client's
    # ``response.context``, which the bench does not use.
    runner = DiscoverRunner(verbosity=0)
    old = runner.setup_databases()
    try:
        outcome = unittest.TextTestRunner(verbosity=0).run(Bench("test_pages"))
    finally:
        runner.teardown_databases(old)
        shutil.rmtree(tmp, ignore_errors=True)
    if not outcome.wasSuccessful():
        return 1
    # CPU time of this process: on a shared machine the wall time includes waiting for a core.
    print(
        f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'page':45} {'median':>9} {'min-max':>17} {'CPU':>9} {'bytes':>8}")
    for label, med, lo, hi, cpu, size in results:
        print(
            f"{label:45} {med * 1000:7.1f}ms {lo * 1000:7.1f}-{hi * 1000:7.1f}ms "
            f"{cpu * 1000:7.1f}ms {size:8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
