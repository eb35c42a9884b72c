"""Live progress in the jobs table, the Runs tab and a run's page, on the embedded store.

The run documents are written through the same API client the agent uses (``job_runs``), so
these tests read what an agent would have published; no API function is mocked.
"""

import time

from django.urls import reverse

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.dashboards.project.freezer_jobs import tables as job_tables
from tests.dashboards import helpers

INDEX_URL = reverse("horizon:project:freezer_jobs:index")
PAYLOAD = '<script>alert("x")</script>'


def row_update(client, job_id):
    return client.get(
        f"{INDEX_URL}?action=row_update&table=jobs&obj_id={job_id}",
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )


class LiveProgressTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self.store = FreezerClient(
            EmbeddedTransport(), project_id=self.tenant.id, user_id=self.user.id, roles=["member"]
        )
        self.store.clients.create({"client_id": "host-1", "hostname": "host-1"})
        doc = helpers.job().to_dict()
        for key in ("job_id", "project_id", "user_id"):
            doc.pop(key)
        doc["job_schedule"] = {"schedule_interval": "6 hours"}
        self.job_id = self.store.jobs.create(doc)

    def set_status(self, status, result=""):
        self.store.jobs.update(self.job_id, {"job_schedule": {"status": status, "result": result}})

    def start_run(self, progress):
        return self.store.job_runs.create(
            {
                "job_id": self.job_id,
                "client_id": "host-1",
                "status": "running",
                "started": int(time.time()) - 65,
                "progress": progress,
            }
        )

    def test_a_running_job_shows_percent_rate_and_eta_and_keeps_refreshing(self):
        self.set_status("running")
        run_id = self.start_run(
            {"bytes_done": 420, "bytes_total": 1000, "files_done": 3, "files_total": 9,
             "rate": 12 * 1024 * 1024, "eta": 65, "percent": 42.0, "phase": "backup"}
        )  # fmt: skip
        res = self.client.get(INDEX_URL)
        self.assertContains(res, "42% · 12.0\xa0MB/s · ETA 1:05 · backup")
        self.assertContains(res, 'aria-valuenow="42"')

        res = row_update(self.client, self.job_id)
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "42% · 12.0\xa0MB/s · ETA 1:05")
        # Still busy: the row keeps its "unknown status" class, so Horizon polls it again.
        self.assertContains(res, "ajax-update")
        self.assertContains(res, "warning")

        # The agent advances the run: the next poll shows the new numbers.
        self.store.job_runs.update(
            run_id, {"progress": {"bytes_done": 900, "bytes_total": 1000, "rate": 2048.0,
                                  "eta": 5, "percent": 90.0, "phase": "backup"}}
        )  # fmt: skip
        self.assertContains(row_update(self.client, self.job_id), "90% · 2.0\xa0KB/s · ETA 0:05")

        # The run ends and the job settles: no progress, and the row stops asking.
        self.store.job_runs.update(run_id, {"status": "success", "ended": int(time.time())})
        self.set_status("completed", "success")
        res = row_update(self.client, self.job_id)
        self.assertContains(res, "Completed")
        self.assertContains(res, "status_up")
        self.assertNotContains(res, "· ETA ")
        self.assertNotContains(res, "progress-bar")

    def test_the_creating_backup_record_is_the_fallback(self):
        # No run document (an agent without run history, or remote mode): the progress the
        # agent publishes on the backup record it is creating is shown instead.
        self.set_status("running")
        self.store.backups.create(
            {"backup_name": "etc", "status": "creating", "job_id": self.job_id,
             "progress": {"bytes_done": 250, "bytes_total": 1000, "rate": 100.0, "eta": 7.5}}
        )  # fmt: skip
        self.assertContains(row_update(self.client, self.job_id), "25% · 100\xa0bytes/s · ETA 0:07")

    def test_a_finished_run_is_not_shown_as_progress(self):
        self.set_status("running")  # the job document lags behind the run
        run_id = self.start_run({"bytes_done": 1, "bytes_total": 2, "percent": 50.0})
        self.store.job_runs.update(run_id, {"status": "fail", "ended": int(time.time())})
        self.assertNotContains(self.client.get(INDEX_URL), "50%")

    def test_progress_text_from_the_agent_is_escaped(self):
        self.set_status("running")
        self.start_run({"bytes_done": 1, "bytes_total": 4, "percent": 25.0, "phase": PAYLOAD})
        res = self.client.get(INDEX_URL)
        self.assertNotContains(res, PAYLOAD)
        self.assertContains(res, "&lt;script&gt;")

    def test_idle_jobs_ask_for_no_progress(self):
        # A stopped job's row makes no run or backup queries (one page may hold many jobs).
        job = helpers.job(status="stop")
        with self.assertNumQueries(0):
            self.assertIsNone(job_tables.job_progress(None, job))


class RunsTabTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self.store = FreezerClient(
            EmbeddedTransport(), project_id=self.tenant.id, user_id=self.user.id, roles=["member"]
        )
        self.store.clients.create({"client_id": "host-1", "hostname": "host-1"})
        doc = helpers.job().to_dict()
        for key in ("job_id", "project_id", "user_id"):
            doc.pop(key)
        self.job_id = self.store.jobs.create(doc)
        now = int(time.time())
        self.old_run = self.store.job_runs.create(
            {"job_id": self.job_id, "client_id": "host-1", "status": "fail",
             "started": now - 7200, "ended": now - 7190, "reason": "path not found",
             "actions": [{"name": "backup", "result": "fail", "error": "no /etc"}],
             "log": ["backup /etc", "error: no /etc"]}
        )  # fmt: skip
        self.new_run = self.store.job_runs.create(
            {"job_id": self.job_id, "client_id": "host-1", "status": "success",
             "started": now - 3725, "ended": now - 3600,
             "actions": [{"name": "backup", "result": "success",
                          "summary": {"files": 1234, "bytes": 5 * 1024 * 1024,
                                      "generation_id": "gen-9"}},
                         {"name": "admin", "result": "success", "summary": {"forgotten": 2}}],
             "log": ["backup /etc -> /srv/backups as 'etc' (tar)", PAYLOAD, "done"]}
        )  # fmt: skip

    def test_runs_tab_lists_history_newest_first(self):
        url = reverse("horizon:project:freezer_jobs:detail", args=[self.job_id])
        res = self.client.get(url + "?tab=job_details__runs")
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, 'id="job_runs"')
        rows = res.context["tab_group"].get_tab("runs")._tables["job_runs"].data
        self.assertEqual([r.id for r in rows], [self.new_run, self.old_run])
        self.assertContains(res, "2:05")  # duration of the newer run
        self.assertContains(res, "5.0\xa0MB")
        self.assertContains(res, "1234")
        self.assertContains(res, "Failed")
        run_url = reverse(
            "horizon:project:freezer_jobs:run_detail", args=[self.job_id, self.new_run]
        )
        self.assertContains(res, f'href="{run_url}"')

    def test_run_detail_shows_actions_and_the_escaped_log(self):
        url = reverse("horizon:project:freezer_jobs:run_detail", args=[self.job_id, self.new_run])
        res = self.client.get(url)
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "freezer-run-log")
        self.assertContains(res, "backup /etc -&gt; /srv/backups as &#x27;etc&#x27; (tar)")
        self.assertNotContains(res, PAYLOAD)
        self.assertContains(res, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
        self.assertContains(res, "generation_id=gen-9")
        self.assertContains(res, "forgotten=2")
        self.assertContains(res, "Success")

        res = self.client.get(
            reverse("horizon:project:freezer_jobs:run_detail", args=[self.job_id, self.old_run])
        )
        self.assertContains(res, "path not found")
        self.assertContains(res, "fail: no /etc")

    def test_a_run_under_another_jobs_url_is_refused(self):
        other = helpers.job().to_dict()
        for key in ("job_id", "project_id", "user_id"):
            other.pop(key)
        other_job = self.store.jobs.create(other)
        url = reverse("horizon:project:freezer_jobs:run_detail", args=[other_job, self.new_run])
        res = self.client.get(url)
        self.assertRedirectsNoFollow(
            res, reverse("horizon:project:freezer_jobs:detail", args=[other_job])
        )

    def test_another_projects_run_is_not_found(self):
        stranger = FreezerClient(
            EmbeddedTransport(), project_id="other-project", user_id="u2", roles=["member"]
        )
        stranger.clients.create({"client_id": "host-9", "hostname": "host-9"})
        doc = helpers.job().to_dict()
        for key in ("job_id", "project_id", "user_id"):
            doc.pop(key)
        their_job = stranger.jobs.create(dict(doc, client_id="host-9"))
        their_run = stranger.job_runs.create(
            {"job_id": their_job, "status": "success", "log": ["their secret log"]}
        )
        url = reverse("horizon:project:freezer_jobs:run_detail", args=[their_job, their_run])
        res = self.client.get(url, follow=True)
        self.assertNotContains(res, "their secret log")
        self.assertTrue(
            any("Unable to retrieve the run" in str(m) for m in res.context["messages"])
        )
