"""Project Overview against the real API layer and embedded store (no mocks).

The records are created here through the embedded transport; every number the page and its
JSON endpoint show is compared with what those records add up to.
"""

import json
import time
from urllib.parse import urlencode

from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api import stats
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Unavailable
from freezer_ui.api.transports.embedded import EmbeddedTransport
from tests.dashboards import helpers

OVERVIEW_URL = reverse("horizon:project:freezer_overview:index")
USAGE_URL = "/api/freezer_ui/stats/usage/"
TOTALS_URL = "/api/freezer_ui/stats/projects/"
PAYLOAD = "<img src=x onerror=alert(1)>"


def store_for(project_id, user_id, roles=("member",)):
    return FreezerClient(EmbeddedTransport(), project_id=project_id, user_id=user_id, roles=roles)


def backup(store, stamp, status="available", **meta):
    return store.backups.create(
        {
            "backup_name": meta.pop("backup_name", "etc"),
            "hostname": meta.pop("hostname", "host-1"),
            "container": "/srv/backups",
            "time_stamp": stamp,
            "status": status,
            **meta,
        }
    )


def ajax_get(client, path, **query):
    """GET through the whole stack (URLconf, middleware, session login) as an AJAX call.

    Not ``client.get``: the test client sets ``response.json``, which Horizon's JSONResponse
    defines as a read-only property, so the request goes to the client's handler directly.
    """
    environ = client._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD="GET",
        QUERY_STRING=urlencode(query),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    return client.handler(environ)


class ProjectOverviewTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self.store = store_for(self.tenant.id, self.user.id)
        self.now = int(time.time())

    def get_page(self):
        # Uncompressed scripts, so the page names the chart script instead of a bundle.
        with self.settings(COMPRESS_ENABLED=False):
            return self.client.get(OVERVIEW_URL)

    def seed(self):
        # Two earlier backups (one hour and two days ago) and one failure; the stamps stay
        # inside the 30-day chart window and the 7-day failure window whatever the time of day.
        backup(self.store, self.now - 2 * 86400, size=4096, stored_bytes=3000, new_bytes=4096)
        backup(self.store, self.now - 3600, size=4096, stored_bytes=500, new_bytes=1024)
        backup(
            self.store,
            self.now - 600,
            status="error",
            backup_name=PAYLOAD,
            error="disk full <script>x</script>",
        )
        # Another project's records: never on this project's pages.
        other = store_for("other-project", "u2")
        backup(other, self.now - 60, backup_name="someone-elses", size=10**9, stored_bytes=10**9)
        backup(other, self.now - 60, status="error", backup_name="their-failure")

    def test_numbers_on_the_page_equal_the_records(self):
        self.seed()
        res = self.get_page()
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "freezer_ui/project/freezer_overview/index.html")
        summary = res.context["usage_summary"]
        self.assertEqual(
            summary,
            {
                "stored_bytes": 3500,
                "backups": 2,
                "failures": 1,
                "new_bytes": 4096 + 1024,
                "runs_success": 0,  # the embedded store keeps a run history; no runs here
                "runs_fail": 0,
            },
        )
        self.assertContains(res, '<span class="freezer-usage-runs">0 succeeded, 0 failed</span>')
        self.assertContains(res, f'<span class="freezer-usage-stored">{filesizeformat(3500)}')
        self.assertContains(res, '<span class="freezer-usage-backups">2</span>')
        self.assertContains(res, '<span class="freezer-usage-failures">1</span>')
        # The charts are there, fed by the endpoint, and the library script is on the page.
        for chart in ("stored", "new", "dedup"):
            self.assertContains(res, f'id="freezer-chart-{chart}"')
        self.assertContains(res, f'data-freezer-usage-url="{USAGE_URL}?days=30"')
        self.assertContains(res, "freezer_ui/js/charts.js")
        self.assertNotContains(res, 'id="freezer-usage-empty"')
        # The failure, its name and message escaped.
        (failure,) = res.context["recent_failures"]
        self.assertEqual(failure["error"], "disk full <script>x</script>")
        self.assertContains(res, "&lt;img src=x onerror=alert(1)&gt;")
        self.assertContains(res, "disk full &lt;script&gt;x&lt;/script&gt;")
        self.assertNotContains(res, PAYLOAD)
        self.assertNotContains(res, "<script>x</script>")
        # Nothing of the other project.
        self.assertNotContains(res, "someone-elses")
        self.assertNotContains(res, "their-failure")

    def test_recent_runs(self):
        self.store.clients.create({"client_id": "host-1", "hostname": "host-1"})
        doc = helpers.job(description="Nightly <b>db</b>").to_dict()
        for key in ("job_id", "project_id", "user_id"):
            doc.pop(key)
        job_id = self.store.jobs.create(doc)
        started, ended = self.now - 100, self.now - 5
        # The job document's last run (all freezer-api keeps) and, where the store keeps the
        # agent's run history, the same run there: the page shows it either way.
        schedule = {"schedule_interval": "6 hours", "status": "completed", "result": "fail"}
        schedule.update(time_started=started, time_ended=ended)
        self.store.jobs.update(job_id, {"job_schedule": schedule})
        if hasattr(self.store, "job_runs"):
            self.store.job_runs.create(
                {
                    "run_id": "run-1",
                    "job_id": job_id,
                    "status": "fail",
                    "started": started,
                    "ended": ended,
                }
            )
        res = self.client.get(OVERVIEW_URL)
        (run,) = res.context["recent_runs"]
        self.assertEqual((run["job_id"], run["status"], run["duration"]), (job_id, "fail", 95))
        self.assertContains(res, "Nightly &lt;b&gt;db&lt;/b&gt;")
        self.assertNotContains(res, "Nightly <b>db</b>")
        self.assertContains(res, "1 min 35 s")
        self.assertContains(res, "Failed")
        self.assertContains(res, reverse("horizon:project:freezer_jobs:detail", args=[job_id]))

    def test_empty_project_says_so_instead_of_drawing(self):
        res = self.client.get(OVERVIEW_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTrue(res.context["usage_empty"])
        self.assertContains(res, 'id="freezer-usage-empty"')
        self.assertContains(res, "Nothing stored yet.")
        self.assertNotContains(res, 'id="freezer-chart-stored"')
        self.assertContains(res, "No job has run yet.")
        self.assertContains(res, "No backup failed in the last 7 days.")

    def test_json_endpoint_series(self):
        self.seed()
        res = ajax_get(self.client, USAGE_URL, days=7)
        self.assertEqual(res.status_code, 200)
        usage = json.loads(res.content)
        self.assertEqual((usage["days"], usage["empty"]), (7, False))
        series = usage["series"]
        self.assertEqual(len(series), 7)
        self.assertEqual(series[-1]["time"], self.now // 86400 * 86400)
        self.assertEqual(series[-1]["stored_bytes"], 3500)
        self.assertEqual(sum(p["success"] for p in series), 2)
        self.assertEqual(sum(p["fail"] for p in series), 1)
        self.assertEqual(sum(p["new_bytes"] for p in series), 4096 + 1024)
        self.assertEqual(sum(p["size"] for p in series), 8192)
        # The day of the first backup has nothing already stored; the latest day 3/4 of it
        # (when both land on different days, which 2 days apart they always do).
        ratios = [p["dedup_ratio"] for p in series if p["dedup_ratio"] is not None]
        self.assertEqual(ratios, [0.0, 0.75])
        self.assertNotIn("someone-elses", res.content.decode())

    def test_json_endpoint_refuses_bad_input(self):
        for days in ("x", "0", "1000"):
            res = ajax_get(self.client, USAGE_URL, days=days)
            self.assertEqual(res.status_code, 400, days)
        # Horizon's REST convention: only AJAX calls.
        environ = self.client._base_environ(PATH_INFO=USAGE_URL, REQUEST_METHOD="GET")
        self.assertEqual(self.client.handler(environ).status_code, 400)

    def test_member_gets_403_from_the_all_projects_endpoint(self):
        self.seed()
        res = ajax_get(self.client, TOTALS_URL)
        self.assertEqual(res.status_code, 403)
        self.assertNotIn("other-project", res.content.decode())

    def test_stats_seam_matches_the_page(self):
        # The page and the API function agree (the page is a view of stats.project_usage).
        self.seed()
        res = self.client.get(OVERVIEW_URL)
        usage = stats.project_usage(res.wsgi_request, days=30)
        self.assertEqual(usage["series"][-1]["stored_bytes"], 3500)
        self.assertFalse(usage["empty"])


class ProjectOverviewUnavailableTests(helpers.TestCase):
    # Remote mode with freezer-api gone: the job and backup sections may have answered from a
    # cache or another endpoint; the usage part says it failed instead of drawing nothing.
    @create_mocks({stats: ["project_usage"]})
    def test_usage_failure_is_a_message(self):
        self.mock_project_usage.side_effect = Unavailable("connection refused")
        res = self.client.get(OVERVIEW_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTrue(res.context["activity_error"])
        self.assertIn(
            "Unable to retrieve recent runs and usage.",
            [str(m.message) for m in res.context["messages"]][0],
        )
        self.assertNotContains(res, 'id="freezer-overview-usage"')

    @create_mocks({stats: ["project_usage"]})
    def test_endpoint_passes_the_service_status_on(self):
        self.mock_project_usage.side_effect = Unavailable("connection refused")
        self.assertEqual(ajax_get(self.client, USAGE_URL).status_code, 503)
