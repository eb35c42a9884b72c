"""The Jobs panel against the real API layer and embedded store (no mocks).

The mocked tests pin what the views send; this one proves the typed document the form builds
is one the API accepts, and that the panel reads back what it stored.
"""

from django.urls import reverse

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.transports.embedded import EmbeddedTransport
from tests.dashboards import helpers
from tests.dashboards.project.test_jobs import form_data

INDEX_URL = reverse("horizon:project:freezer_jobs:index")
CREATE_URL = reverse("horizon:project:freezer_jobs:create")


class EmbeddedJobsTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        # An agent registers itself; the panel has no "add client" form, so the test does it.
        self.store = FreezerClient(
            EmbeddedTransport(), project_id=self.tenant.id, user_id=self.user.id, roles=["member"]
        )
        # freezer-api's client registration takes the client info; the store wraps it.
        self.store.clients.create(
            {"client_id": "host-1", "hostname": "host-1", "supported_engines": ["tar"]}
        )

    def test_create_list_start_stop_delete(self):
        res = self.client.post(CREATE_URL, form_data(description="Real job <em>1</em>"))
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)

        (job,) = self.store.jobs.list(limit=10)
        self.assertEqual(job["project_id"], self.tenant.id)
        self.assertEqual(job["job_schedule"]["schedule_interval"], "6 hours")
        job_id = job["job_id"]

        res = self.client.get(INDEX_URL)
        self.assertContains(res, "Real job &lt;em&gt;1&lt;/em&gt;")
        self.assertContains(res, f"jobs__start__{job_id}")

        self.client.post(INDEX_URL, {"action": f"jobs__start__{job_id}"})
        self.assertEqual(self.store.jobs.get(job_id)["job_schedule"]["event"], "start")
        res = self.client.get(INDEX_URL)
        self.assertContains(res, "Start requested")

        self.client.post(INDEX_URL, {"action": f"jobs__stop__{job_id}"})
        self.assertEqual(self.store.jobs.get(job_id)["job_schedule"]["event"], "stop")

        detail = self.client.get(reverse("horizon:project:freezer_jobs:detail", args=[job_id]))
        self.assertContains(detail, "Every 6 hours")

        self.client.post(INDEX_URL, {"action": f"jobs__delete__{job_id}"})
        self.assertEqual(list(self.store.jobs.list(limit=10)), [])

    def test_edit_round_trip(self):
        self.client.post(CREATE_URL, form_data())
        (job,) = self.store.jobs.list(limit=10)
        url = reverse("horizon:project:freezer_jobs:update", args=[job["job_id"]])
        res = self.client.get(url)
        self.assertEqual(res.context["form"].initial["interval_unit"], "hours")
        res = self.client.post(
            url,
            form_data(schedule_kind="continuous", backup_name="etc2"),
        )
        self.assertNoFormErrors(res)
        stored = self.store.jobs.get(job["job_id"])
        self.assertEqual(stored["job_schedule"]["schedule_interval"], "continuous")
        self.assertEqual(stored["job_actions"][0]["freezer_action"]["backup_name"], "etc2")

    def test_another_projects_job_is_not_listed(self):
        other = FreezerClient(
            EmbeddedTransport(), project_id="other-project", user_id="u2", roles=["member"]
        )
        other.clients.create({"client_id": "host-9", "hostname": "host-9"})
        doc = helpers.job().to_dict()
        for key in ("job_id", "project_id", "user_id"):
            doc.pop(key)
        other.jobs.create(dict(doc, client_id="host-9", description="not yours"))
        res = self.client.get(INDEX_URL)
        self.assertNotContains(res, "not yours")

    def test_session_create_add_and_remove_a_job(self):
        self.client.post(CREATE_URL, form_data())
        (job,) = self.store.jobs.list(limit=10)
        res = self.client.post(
            reverse("horizon:project:freezer_sessions:create"),
            {"description": "Web nodes", "schedule_kind": "interval", "interval_number": "1",
             "interval_unit": "days"},
        )  # fmt: skip
        self.assertNoFormErrors(res)
        (session,) = self.store.sessions.list(limit=10)
        self.assertEqual(session["schedule"]["schedule_interval"], "1 days")
        sid = session["session_id"]

        add_url = reverse("horizon:project:freezer_sessions:add_job", args=[sid])
        res = self.client.get(add_url)
        # The job repeats every 6 hours, the session every day: the list and the page say so.
        self.assertContains(res, "Nightly /etc (own schedule: Every 6 hours)")
        self.assertContains(res, "its own schedule is replaced")
        self.assertEqual(self.store.jobs.get(job["job_id"])["job_schedule"]["schedule_interval"],
                         "6 hours")  # fmt: skip
        res = self.client.post(add_url, {"job_id": job["job_id"]}, follow=True)
        messages = [str(m) for m in res.context["messages"]]
        self.assertIn(
            'Added "Nightly /etc" to the session "Web nodes". Its own schedule (Every 6 hours) '
            "was replaced by the session's (Every day).",
            messages,
        )
        self.assertIn(job["job_id"], self.store.sessions.get(sid)["jobs"])
        # freezer-api's rule: the job now carries the session's schedule.
        self.assertEqual(self.store.jobs.get(job["job_id"])["job_schedule"]["schedule_interval"],
                         "1 days")  # fmt: skip
        res = self.client.get(reverse("horizon:project:freezer_sessions:index"))
        self.assertContains(res, f"/project/freezer_sessions/{sid}/remove_job/")

        remove_url = reverse("horizon:project:freezer_sessions:remove_job", args=[sid])
        self.assertContains(self.client.get(remove_url), "is not restored")
        self.client.post(remove_url, {"job_id": job["job_id"]})
        self.assertNotIn(job["job_id"], self.store.sessions.get(sid).get("jobs") or {})

    def test_a_job_on_the_sessions_schedule_needs_no_confirmation(self):
        self.client.post(CREATE_URL, form_data(interval_number="1", interval_unit="days",
                                               start_date=""))  # fmt: skip
        (job,) = self.store.jobs.list(limit=10)
        sid = self.store.sessions.create({"description": "Daily", "schedule": {
            "schedule_interval": "1 days"}})  # fmt: skip
        add_url = reverse("horizon:project:freezer_sessions:add_job", args=[sid])
        self.assertNotContains(self.client.get(add_url), "own schedule:")
        res = self.client.post(add_url, {"job_id": job["job_id"]}, follow=True)
        self.assertIn(job["job_id"], self.store.sessions.get(sid)["jobs"])
        self.assertIn(
            "Added the job to the session; it runs on the session's schedule.",
            [str(m) for m in res.context["messages"]],
        )

    def test_session_warning_message_escapes_names(self):
        payload = "<img src=x onerror=alert(1)>"
        self.client.post(CREATE_URL, form_data(description=payload))
        (job,) = self.store.jobs.list(limit=10)
        sid = self.store.sessions.create(
            {"description": payload, "schedule": {"schedule_interval": "1 days"}}
        )
        add_url = reverse("horizon:project:freezer_sessions:add_job", args=[sid])
        page = self.client.get(add_url)
        self.assertNotContains(page, payload)
        res = self.client.post(add_url, {"job_id": job["job_id"]}, follow=True)
        self.assertIn(job["job_id"], self.store.sessions.get(sid)["jobs"])
        self.assertNotContains(res, payload)
        self.assertContains(res, "Its own schedule (Every 6 hours)")
