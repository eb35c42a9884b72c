"""Backups, Clients, Sessions, Restore and Overview panels."""

from django.urls import reverse
from horizon.test.helpers import IsHttpRequest
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from tests.dashboards import helpers

BACKUPS_URL = reverse("horizon:project:freezer_backups:index")
CLIENTS_URL = reverse("horizon:project:freezer_clients:index")
SESSIONS_URL = reverse("horizon:project:freezer_sessions:index")
SESSION_CREATE_URL = reverse("horizon:project:freezer_sessions:create")
RESTORE_URL = reverse("horizon:project:freezer_restore:index")
OVERVIEW_URL = reverse("horizon:project:freezer_overview:index")
PAYLOAD = "<img src=x onerror=alert(1)>"


def messages_of(res):
    return [str(m) for m in res.context["messages"]]


class BackupsTests(helpers.TestCase):
    @create_mocks({api_freezer: ["backup_list"]})
    def test_empty(self):
        self.mock_backup_list.return_value = ([], False)
        self.assertContains(self.client.get(BACKUPS_URL), "No backups yet")


class ClientsTests(helpers.TestCase):
    @create_mocks({api_freezer: ["client_list"]})
    def test_index_renders_rows(self):
        self.mock_client_list.return_value = ([helpers.client(description=PAYLOAD)], False)
        res = self.client.get(CLIENTS_URL)
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "host-1")
        self.assertContains(res, "tar, rsync")
        self.assertNotContains(res, PAYLOAD)

    @create_mocks({api_freezer: ["client_list", "client_delete"]})
    def test_delete(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        res = self.client.post(CLIENTS_URL, {"action": "clients__delete__host-1"})
        self.assertRedirectsNoFollow(res, CLIENTS_URL)
        self.mock_client_delete.assert_called_once_with(IsHttpRequest(), "host-1")

    @create_mocks({api_freezer: ["client_list"]})
    def test_unavailable_and_empty(self):
        self.mock_client_list.side_effect = api_exceptions.Unavailable("connection refused")
        res = self.client.get(CLIENTS_URL)
        self.assertIn("Unable to retrieve backup clients.", messages_of(res)[0])
        self.mock_client_list.side_effect = None
        self.mock_client_list.return_value = ([], False)
        self.assertContains(self.client.get(CLIENTS_URL), "No backup agents have registered")


class SessionsTests(helpers.TestCase):
    @create_mocks({api_freezer: ["session_list"]})
    def test_index_renders_rows(self):
        self.mock_session_list.return_value = ([helpers.session()], False)
        res = self.client.get(SESSIONS_URL)
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "All web nodes")
        self.assertContains(res, "Every day")

    @create_mocks({api_freezer: ["session_create"]})
    def test_create(self):
        self.mock_session_create.return_value = "session-2"
        res = self.client.post(
            SESSION_CREATE_URL,
            {
                "description": "DB nodes",
                "hold_off": "30",
                "schedule_kind": "interval",
                "interval_number": "1",
                "interval_unit": "days",
                "start_date": "",
                "end_date": "",
            },
        )
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, SESSIONS_URL)
        self.mock_session_create.assert_called_once_with(
            IsHttpRequest(),
            {
                "description": "DB nodes",
                "hold_off": 30,
                "schedule": {"schedule_interval": "1 days"},
            },
        )

    @create_mocks({api_freezer: ["session_create"]})
    def test_create_refuses_a_bad_interval(self):
        res = self.client.post(
            SESSION_CREATE_URL,
            {"description": "DB nodes", "schedule_kind": "interval", "interval_number": "-3",
             "interval_unit": "days"},
        )  # fmt: skip
        self.assertIn("interval_number", res.context["form"].errors)
        self.mock_session_create.assert_not_called()

    @create_mocks({api_freezer: ["session_create"]})
    def test_create_maps_api_errors(self):
        self.mock_session_create.side_effect = api_exceptions.ValidationError(
            {"schedule.schedule_start_date": "must be an ISO 8601 date"}
        )
        res = self.client.post(
            SESSION_CREATE_URL,
            {"description": "x", "schedule_kind": "once", "start_date": "2030-01-01T00:00"},
        )
        self.assertEqual(res.context["form"].errors["start_date"], ["must be an ISO 8601 date"])

    @create_mocks({api_freezer: ["session_list", "session_delete"]})
    def test_delete(self):
        self.mock_session_list.return_value = ([helpers.session()], False)
        res = self.client.post(SESSIONS_URL, {"action": "sessions__delete__session-1"})
        self.assertRedirectsNoFollow(res, SESSIONS_URL)
        self.mock_session_delete.assert_called_once_with(IsHttpRequest(), "session-1")

    @create_mocks({api_freezer: ["session_list"]})
    def test_unavailable(self):
        self.mock_session_list.side_effect = api_exceptions.Unavailable("connection refused")
        res = self.client.get(SESSIONS_URL)
        self.assertEqual(res.status_code, 200)
        self.assertIn("Unable to retrieve sessions.", messages_of(res)[0])


class RestoreTests(helpers.TestCase):
    @create_mocks({api_freezer: ["backup_list"]})
    def test_lists_restorable_generations_only(self):
        self.mock_backup_list.return_value = (
            [
                helpers.backup(),
                helpers.backup(backup_id="b-2", status="error", generation_id="bad"),
            ],
            False,
        )
        res = self.client.get(RESTORE_URL)
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "gen-1")
        self.assertNotContains(res, ">bad<")
        self.assertContains(res, "freezer-ui-agent restore")

    @create_mocks({api_freezer: ["backup_list"]})
    def test_empty_state(self):
        self.mock_backup_list.return_value = ([], False)
        self.assertContains(self.client.get(RESTORE_URL), "Nothing to restore yet")


class OverviewTests(helpers.TestCase):
    @create_mocks({api_freezer: ["job_list", "backup_list"]})
    def test_counts_jobs_by_status_and_lists_recent_backups(self):
        self.mock_job_list.return_value = (
            [
                helpers.job(job_id="a", status="running"),
                helpers.job(job_id="b", status="running"),
                helpers.job(job_id="c", status="stop"),
            ],
            False,
        )
        self.mock_backup_list.return_value = (
            [
                helpers.backup(backup_id="old", backup_name="old-one", time_stamp=1000000000),
                helpers.backup(backup_id="new", backup_name=PAYLOAD, time_stamp=1900000000),
            ],
            False,
        )
        res = self.client.get(OVERVIEW_URL)
        self.assertEqual(res.status_code, 200)
        self.assertEqual(res.context["job_total"], 3)
        counts = {e["status"]: e["count"] for e in res.context["job_statuses"]}
        self.assertEqual(counts["running"], 2)
        self.assertEqual(counts["stop"], 1)
        self.assertEqual([b.id for b in res.context["recent_backups"]], ["new", "old"])
        self.assertNotContains(res, PAYLOAD)

    @create_mocks({api_freezer: ["job_list", "backup_list"]})
    def test_counts_every_page(self):
        self.mock_job_list.side_effect = [
            ([helpers.job(job_id=str(i)) for i in range(200)], True),
            ([helpers.job(job_id="last", status="scheduled")], False),
        ]
        self.mock_backup_list.return_value = ([], False)
        res = self.client.get(OVERVIEW_URL)
        self.assertEqual(res.context["job_total"], 201)
        self.assertEqual(self.mock_job_list.call_args.kwargs["offset"], 200)

    @create_mocks({api_freezer: ["job_list", "backup_list"]})
    def test_empty_state(self):
        self.mock_job_list.return_value = ([], False)
        self.mock_backup_list.return_value = ([], False)
        res = self.client.get(OVERVIEW_URL)
        self.assertContains(res, "No backup jobs yet")
        self.assertContains(res, "No backups yet")

    @create_mocks({api_freezer: ["job_list", "backup_list"]})
    def test_unavailable(self):
        self.mock_job_list.side_effect = api_exceptions.Unavailable("connection refused")
        res = self.client.get(OVERVIEW_URL)
        self.assertEqual(res.status_code, 200)
        self.assertIn("Unable to retrieve the backup overview.", messages_of(res)[0])
        self.assertContains(res, "could not be reached")


class BackupDetailTests(helpers.TestCase):
    @create_mocks({api_freezer: ["backup_get"]})
    def test_missing_backup_redirects(self):
        self.mock_backup_get.side_effect = api_exceptions.NotFound("no such backup")
        res = self.client.get(reverse("horizon:project:freezer_backups:detail", args=["nope"]))
        self.assertRedirectsNoFollow(res, BACKUPS_URL)


class SessionJobsTests(helpers.TestCase):
    def add_url(self):
        return reverse("horizon:project:freezer_sessions:add_job", args=["session-1"])

    def remove_url(self):
        return reverse("horizon:project:freezer_sessions:remove_job", args=["session-1"])

    @create_mocks({api_freezer: ["session_get", "job_list", "session_add_job"]})
    def test_add_job_offers_only_jobs_outside_the_session(self):
        self.mock_session_get.return_value = helpers.session(
            description=PAYLOAD, jobs={"job-1": {"status": "stop"}}
        )
        self.mock_job_list.return_value = (
            [helpers.job(), helpers.job(job_id="job-2", description="Weekly")],
            False,
        )
        res = self.client.get(self.add_url())
        self.assertEqual(res.status_code, 200)
        self.assertEqual(
            [c[0] for c in res.context["form"].fields["job_id"].choices], ["", "job-2"]
        )
        self.assertContains(res, "its own schedule is replaced")
        self.assertNotContains(res, PAYLOAD)

        res = self.client.post(self.add_url(), {"job_id": "job-2"})
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, SESSIONS_URL)
        self.mock_session_add_job.assert_called_once_with(IsHttpRequest(), "session-1", "job-2")

    @create_mocks({api_freezer: ["session_get", "job_list", "session_add_job"]})
    def test_a_job_of_the_session_cannot_be_added_again(self):
        self.mock_session_get.return_value = helpers.session(jobs={"job-1": {}})
        self.mock_job_list.return_value = ([helpers.job()], False)
        res = self.client.post(self.add_url(), {"job_id": "job-1"})
        self.assertIn("job_id", res.context["form"].errors)
        self.mock_session_add_job.assert_not_called()

    @create_mocks({api_freezer: ["session_get", "job_list", "session_remove_job"]})
    def test_remove_job(self):
        self.mock_session_get.return_value = helpers.session(jobs={"job-1": {}})
        self.mock_job_list.return_value = (
            [helpers.job(), helpers.job(job_id="job-2")],
            False,
        )
        res = self.client.post(self.remove_url(), {"job_id": "job-1"})
        self.assertRedirectsNoFollow(res, SESSIONS_URL)
        self.mock_session_remove_job.assert_called_once_with(IsHttpRequest(), "session-1", "job-1")

    @create_mocks({api_freezer: ["session_list"]})
    def test_remove_is_offered_only_when_the_session_has_jobs(self):
        self.mock_session_list.return_value = (
            [helpers.session(), helpers.session(session_id="s-2", jobs={"job-1": {}})],
            False,
        )
        res = self.client.get(SESSIONS_URL)
        self.assertContains(res, "/project/freezer_sessions/session-1/add_job/")
        self.assertNotContains(res, "/project/freezer_sessions/session-1/remove_job/")
        self.assertContains(res, "/project/freezer_sessions/s-2/remove_job/")
