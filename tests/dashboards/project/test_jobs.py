import datetime

from django.urls import reverse
from horizon.test.helpers import IsHttpRequest
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from tests.dashboards import helpers

INDEX_URL = reverse("horizon:project:freezer_jobs:index")
CREATE_URL = reverse("horizon:project:freezer_jobs:create")
PAYLOAD = '<script>alert("x")</script>'


def step_errors(res):
    """``{step slug: {field: [messages]}}`` of the wizard in a response (steps with errors)."""
    return {
        step.slug: {f: [str(m) for m in msgs] for f, msgs in step.action.errors.items()}
        for step in res.context["workflow"].steps
        if step.action.errors
    }


def all_errors(res):
    return {f: m for errors in step_errors(res).values() for f, m in errors.items()}


def form_data(**overrides):
    data = {
        "description": "Nightly /etc",
        "client_id": "host-1",
        "engine_name": "tar",
        "path_to_backup": "/etc",
        "backup_name": "etc",
        "storage": "local",
        "container": "/srv/backups",
        "passphrase_ref": "",
        "exclude": "",
        "keep_last": "",
        "keep_daily": "",
        "keep_weekly": "",
        "keep_monthly": "",
        "remove_older_than": "",
        "schedule_kind": "interval",
        "interval_number": "6",
        "interval_unit": "hours",
        "start_date": "2030-01-01T10:00",
        "end_date": "",
        "max_retries": "3",
        "max_retries_interval": "60",
    }
    data.update(overrides)
    return data


class JobIndexTests(helpers.TestCase):
    @create_mocks({api_freezer: ["job_list"]})
    def test_index_renders_rows(self):
        self.mock_job_list.return_value = (
            [helpers.job(), helpers.job(job_id="job-2", description="Weekly /home")],
            False,
        )
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "freezer_ui/project/freezer_jobs/index.html")
        self.assertEqual(len(res.context["table"].data), 2)
        self.assertContains(res, "Nightly /etc")
        self.assertContains(res, "Weekly /home")
        self.assertContains(res, "Every 6 hours")
        self.assertContains(res, 'id="jobs"')
        self.assertContains(res, 'href="/static/freezer_ui/css/freezer_ui.css"')
        self.assertNotContains(res, 'href="?offset=')
        self.mock_job_list.assert_called_once_with(IsHttpRequest(), limit=20, offset=0, search=None)

    @create_mocks({api_freezer: ["job_list"]})
    def test_pagination_marker_carries_the_offset(self):
        self.mock_job_list.return_value = ([helpers.job()], True)
        res = self.client.get(INDEX_URL)
        # One row on a page that has more: "Next" asks for the rows after it.
        self.assertContains(res, 'href="?offset=1"')

        self.mock_job_list.reset_mock()
        self.mock_job_list.return_value = ([helpers.job(job_id="job-21")], False)
        res = self.client.get(INDEX_URL + "?offset=20")
        self.mock_job_list.assert_called_once_with(
            IsHttpRequest(), limit=20, offset=20, search=None
        )
        self.assertContains(res, 'href="?offset=0"')  # "Prev"
        self.assertNotContains(res, 'href="?offset=21"')

    @create_mocks({api_freezer: ["job_list"]})
    def test_bad_offset_is_the_first_page(self):
        self.mock_job_list.return_value = ([], False)
        self.client.get(INDEX_URL + "?offset=-5")
        self.client.get(INDEX_URL + "?offset=abc")
        for call in self.mock_job_list.call_args_list:
            self.assertEqual(call.kwargs["offset"], 0)

    @create_mocks({api_freezer: ["job_list"]})
    def test_empty_state_is_said_in_words(self):
        self.mock_job_list.return_value = ([], False)
        res = self.client.get(INDEX_URL)
        self.assertContains(res, "No backup jobs yet")

    @create_mocks({api_freezer: ["job_list"]})
    def test_unavailable_api_shows_a_message_not_a_500(self):
        self.mock_job_list.side_effect = api_exceptions.Unavailable(
            "freezer-api at http://127.0.0.1:9090 is unreachable"
        )
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertMessageCount(res, error=1)
        messages = [str(m) for m in res.context["messages"]]
        self.assertIn("Unable to retrieve backup jobs.", messages[0])
        self.assertIn("unreachable", messages[0])
        # An unreachable service is not an empty project.
        self.assertNotContains(res, "No backup jobs yet")

    @create_mocks({api_freezer: ["job_list"]})
    def test_html_in_a_job_description_is_escaped(self):
        self.mock_job_list.return_value = ([helpers.job(description=PAYLOAD)], False)
        res = self.client.get(INDEX_URL)
        self.assertNotContains(res, PAYLOAD)
        self.assertContains(res, "&lt;script&gt;alert(")

    @create_mocks({api_freezer: ["job_list"]})
    def test_filter_is_passed_to_the_api(self):
        self.mock_job_list.return_value = ([], False)
        self.client.post(INDEX_URL, {"jobs__filter__q": "etc", "jobs__filter__q_field": "search"})
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertEqual(self.mock_job_list.call_args.kwargs["search"], "etc")


class JobActionTests(helpers.TestCase):
    @create_mocks({api_freezer: ["job_list", "job_delete"]})
    def test_delete(self):
        self.mock_job_list.return_value = ([helpers.job()], False)
        res = self.client.post(INDEX_URL, {"action": "jobs__delete__job-1"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_job_delete.assert_called_once_with(IsHttpRequest(), "job-1")

    @create_mocks({api_freezer: ["job_list", "job_start"]})
    def test_start(self):
        self.mock_job_list.return_value = ([helpers.job(status="stop")], False)
        res = self.client.post(INDEX_URL, {"action": "jobs__start__job-1"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_job_start.assert_called_once_with(IsHttpRequest(), "job-1")

    @create_mocks({api_freezer: ["job_list", "job_stop"]})
    def test_stop(self):
        self.mock_job_list.return_value = ([helpers.job(status="scheduled")], False)
        res = self.client.post(INDEX_URL, {"action": "jobs__stop__job-1"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_job_stop.assert_called_once_with(IsHttpRequest(), "job-1")

    @create_mocks({api_freezer: ["job_list", "job_abort"]})
    def test_abort_a_running_job(self):
        self.mock_job_list.return_value = ([helpers.job(status="running")], False)
        res = self.client.post(INDEX_URL, {"action": "jobs__abort__job-1"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_job_abort.assert_called_once_with(IsHttpRequest(), "job-1")

    @create_mocks({api_freezer: ["job_list", "job_abort"]})
    def test_only_a_running_job_can_be_aborted(self):
        self.mock_job_list.return_value = ([helpers.job(status="stop")], False)
        self.assertNotContains(self.client.get(INDEX_URL), "jobs__abort__job-1")
        self.client.post(INDEX_URL, {"action": "jobs__abort__job-1"})
        self.mock_job_abort.assert_not_called()

    @create_mocks({api_freezer: ["job_list", "job_start"]})
    def test_running_job_cannot_be_started_again(self):
        self.mock_job_list.return_value = ([helpers.job(status="running")], False)
        res = self.client.get(INDEX_URL)
        self.assertNotContains(res, "jobs__start__job-1")
        self.assertContains(res, "jobs__stop__job-1")
        self.client.post(INDEX_URL, {"action": "jobs__start__job-1"})
        self.mock_job_start.assert_not_called()

    @create_mocks({api_freezer: ["job_list", "job_start"]})
    def test_a_scheduled_job_can_be_run_now(self):
        # Waiting for its next interval: "Start" runs it now (the agent honours a start event
        # whatever the schedule), and it can still be stopped.
        self.mock_job_list.return_value = ([helpers.job(status="scheduled")], False)
        res = self.client.get(INDEX_URL)
        self.assertContains(res, "jobs__start__job-1")
        self.assertContains(res, "jobs__stop__job-1")
        self.client.post(INDEX_URL, {"action": "jobs__start__job-1"})
        self.mock_job_start.assert_called_once_with(IsHttpRequest(), "job-1")

    @create_mocks({api_freezer: ["job_list"]})
    def test_a_requested_start_shows_as_such(self):
        # The agent has not picked the start up yet: status is still empty, the event says start.
        self.mock_job_list.return_value = ([helpers.job(status="", event="start")], False)
        res = self.client.get(INDEX_URL)
        self.assertContains(res, "Start requested")
        self.assertNotContains(res, "jobs__start__job-1")
        self.assertContains(res, "jobs__stop__job-1")

    @create_mocks({api_freezer: ["job_list", "job_start"]})
    def test_start_failure_is_reported(self):
        self.mock_job_list.return_value = ([helpers.job(status="stop")], False)
        self.mock_job_start.side_effect = api_exceptions.Unavailable("no route to freezer-api")
        res = self.client.post(INDEX_URL, {"action": "jobs__start__job-1"}, follow=True)
        self.assertEqual(res.status_code, 200)
        self.assertTrue(any("Unable to start" in str(m) for m in res.context["messages"]))


class JobCreateTests(helpers.TestCase):
    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_create_posts_the_typed_document(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.return_value = "job-9"
        # A forged project field is ignored: the project comes from the login, in the API layer.
        res = self.client.post(CREATE_URL, form_data(project_id="someone-else"))
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_job_create.assert_called_once_with(
            IsHttpRequest(),
            {
                "description": "Nightly /etc",
                "client_id": "host-1",
                "job_schedule": {
                    "schedule_interval": "6 hours",
                    # The test user's time zone is UTC.
                    "schedule_start_date": "2030-01-01T10:00:00",
                },
                "job_actions": [
                    {
                        "freezer_action": {
                            "action": "backup",
                            "mode": "fs",
                            "engine_name": "tar",
                            "storage": "local",
                            "path_to_backup": "/etc",
                            "backup_name": "etc",
                            "container": "/srv/backups",
                        },
                        "max_retries": 3,
                        "max_retries_interval": 60,
                        "mandatory": True,
                    }
                ],
            },
        )

    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_wizard_offers_typed_choices(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        res = self.client.get(CREATE_URL)
        self.assertEqual(res.status_code, 200)
        workflow = res.context["workflow"]
        self.assertEqual(
            [s.slug for s in workflow.steps],
            ["client", "engine", "storage", "schedule", "retention"],
        )
        fields = {name: f for s in workflow.steps for name, f in s.action.fields.items()}
        # The only client lists tar and rsync: nothing else is offered.
        self.assertEqual([c[0] for c in fields["engine_name"].choices], ["tar", "rsync"])
        self.assertIn("swift", [c[0] for c in fields["storage"].choices])
        self.assertEqual(
            [c[0] for c in fields["interval_unit"].choices],
            ["minutes", "hours", "days", "weeks"],
        )
        self.assertEqual([c[0] for c in fields["client_id"].choices], ["", "host-1"])
        for field_id in ("id_description", "id_interval_number", "id_start_date", "id_keep_last"):
            self.assertContains(res, f'id="{field_id}"')
        self.assertContains(res, 'type="datetime-local"')
        # The browser-side picker gets each client's engines; the JS that uses them is loaded.
        self.assertContains(res, 'data-engines="{&quot;host-1&quot;: [&quot;tar&quot;')
        self.assertContains(res, "freezer_ui/js/jobs.js")
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_continuous_and_once_schedules(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.return_value = "job-9"
        self.client.post(CREATE_URL, form_data(schedule_kind="continuous", start_date=""))
        doc = self.mock_job_create.call_args.args[1]
        self.assertEqual(doc["job_schedule"], {"schedule_interval": "continuous"})
        self.client.post(CREATE_URL, form_data(schedule_kind="once", interval_number=""))
        doc = self.mock_job_create.call_args.args[1]
        self.assertEqual(doc["job_schedule"], {"schedule_start_date": "2030-01-01T10:00:00"})

    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_api_validation_errors_land_on_the_fields(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.side_effect = api_exceptions.ValidationError(
            {
                "job_schedule.schedule_interval": "must be 'continuous' or a number and a unit",
                "job_actions.0.freezer_action.path_to_backup": "is outside the allowed roots",
                "": "the document is not valid",
            }
        )
        res = self.client.post(CREATE_URL, form_data(path_to_backup="/forbidden"))
        self.assertEqual(res.status_code, 200)  # the wizard again, nothing saved
        errors = step_errors(res)
        self.assertEqual(
            errors["schedule"]["interval_number"], ["must be 'continuous' or a number and a unit"]
        )
        self.assertEqual(errors["engine"]["path_to_backup"], ["is outside the allowed roots"])
        self.assertIn("the document is not valid", errors["client"]["__all__"])
        self.mock_job_create.assert_called_once()

    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_bad_schedule_is_refused_by_the_form(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        cases = {
            "interval_number": {"interval_number": ""},
            "interval_number ": {"interval_number": "0"},
            " interval_number": {"interval_number": "many"},
            "interval_unit": {"interval_unit": "fortnights"},
            "start_date": {"start_date": "2030-02-31T10:00"},
            "end_date": {"end_date": "2029-12-31T10:00"},  # before the start
            " end_date": {"start_date": "", "end_date": "2001-01-01T00:00"},  # in the past
            "schedule_kind": {"schedule_kind": "1===2"},
            "engine_name": {"engine_name": "nova"},
            "backup_name": {"backup_name": "../etc"},
            "max_retries": {"max_retries": "-1"},
            "client_id": {"client_id": ""},
        }
        for field, overrides in cases.items():
            res = self.client.post(CREATE_URL, form_data(**overrides))
            self.assertEqual(res.status_code, 200, field)
            self.assertIn(field.strip(), all_errors(res), field)
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_no_agent_means_no_job(self):
        self.mock_client_list.return_value = ([], False)
        res = self.client.get(CREATE_URL)
        self.assertContains(res, "No agent has registered in this project yet")
        res = self.client.post(CREATE_URL, form_data())
        self.assertIn("client_id", all_errors(res))
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_unlisted_agents_are_not_called_missing(self):
        self.mock_client_list.side_effect = api_exceptions.Unavailable("freezer-api is down")
        res = self.client.get(CREATE_URL)
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "The list of agents could not be retrieved")
        self.assertNotContains(res, "No agent has registered")

    @create_mocks({api_freezer: ["job_list", "job_get"]})
    def test_a_busy_row_refreshes_itself(self):
        self.mock_job_list.return_value = ([helpers.job(status="running")], False)
        res = self.client.get(INDEX_URL)
        self.assertContains(res, "data-update-url=")
        self.mock_job_get.return_value = helpers.job(status="completed")
        res = self.client.get(
            INDEX_URL + "?action=row_update&table=jobs&obj_id=job-1",
            HTTP_X_REQUESTED_WITH="XMLHttpRequest",
        )
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "Completed")
        self.mock_job_get.assert_called_once_with(IsHttpRequest(), "job-1")

    @create_mocks({api_freezer: ["client_list", "job_create"]})
    def test_unavailable_on_create_keeps_the_form(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.side_effect = api_exceptions.Unavailable("freezer-api is down")
        res = self.client.post(CREATE_URL, form_data())
        self.assertEqual(res.status_code, 200)  # the wizard again, with what was typed
        self.assertIn("Nightly /etc", res.content.decode())
        self.assertTrue(any("Unable to create the job" in str(m) for m in res.context["messages"]))


class JobUpdateAndDetailTests(helpers.TestCase):
    def job_with_extra_action(self):
        job = helpers.job(schedule_end_date="2031-01-01T00:00:00")
        doc = job.to_dict()
        doc["job_actions"][0]["freezer_action"]["exclude"] = "*.tmp"
        doc["job_actions"][0]["action_id"] = "action-1"
        doc["job_actions"].append(
            {
                "action_id": "action-2",
                "freezer_action": {"action": "exec", "command": "sync"},
                "max_retries": 1,
            }
        )
        return type(job)(doc)

    @create_mocks({api_freezer: ["client_list", "job_get"]})
    def test_update_form_is_prefilled(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_get.return_value = self.job_with_extra_action()
        res = self.client.get(reverse("horizon:project:freezer_jobs:update", args=["job-1"]))
        self.assertEqual(res.status_code, 200)
        initial = res.context["workflow"].context
        self.assertEqual(initial["schedule_kind"], "interval")
        self.assertEqual(initial["interval_number"], 6)
        self.assertEqual(initial["interval_unit"], "hours")
        self.assertEqual(initial["path_to_backup"], "/etc")
        self.assertEqual(initial["end_date"], datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC))
        self.assertEqual(initial["exclude"], "*.tmp")

    @create_mocks({api_freezer: ["client_list", "job_get", "job_update"]})
    def test_update_keeps_what_the_form_does_not_show(self):
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_get.return_value = self.job_with_extra_action()
        url = reverse("horizon:project:freezer_jobs:update", args=["job-1"])
        res = self.client.post(
            url,
            form_data(job_id="job-2", schedule_kind="once", path_to_backup="/srv", exclude="*.tmp"),
        )
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        job_id, patch = self.mock_job_update.call_args.args[1:]
        self.assertEqual(job_id, "job-1")  # from the URL; a posted job_id is ignored
        self.assertEqual(
            patch["job_schedule"],
            {
                "status": "stop",
                "event": "",
                "result": "",
                "schedule_start_date": "2030-01-01T10:00:00",
            },
        )
        backup, extra = patch["job_actions"]
        self.assertEqual(backup["freezer_action"]["path_to_backup"], "/srv")
        self.assertEqual(backup["freezer_action"]["exclude"], "*.tmp")
        # The changed action goes without its ID (stored anew); the untouched one keeps its ID.
        self.assertNotIn("action_id", backup)
        self.assertEqual(
            extra,
            {
                "action_id": "action-2",
                "freezer_action": {"action": "exec", "command": "sync"},
                "max_retries": 1,
            },
        )

    @create_mocks({api_freezer: ["job_get"]})
    def test_detail_shows_schedule_and_actions_escaped(self):
        self.mock_job_get.return_value = helpers.job(description=PAYLOAD)
        res = self.client.get(reverse("horizon:project:freezer_jobs:detail", args=["job-1"]))
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "Every 6 hours")
        self.assertContains(res, "/srv/backups")
        self.assertContains(res, "Action 1: backup")
        self.assertContains(res, "2030-01-01 10:00")  # start date, in the user's zone (UTC)
        self.assertNotContains(res, PAYLOAD)

    @create_mocks({api_freezer: ["job_get", "backup_list"]})
    def test_detail_backups_tab_lists_the_jobs_backups(self):
        self.mock_job_get.return_value = helpers.job()
        self.mock_backup_list.return_value = (
            [helpers.backup(), helpers.backup(backup_id="b-2", time_stamp=1893600000)],
            False,
        )
        url = reverse("horizon:project:freezer_jobs:detail", args=["job-1"])
        res = self.client.get(url + "?tab=job_details__backups")
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, 'id="job_backups"')
        self.assertContains(res, "gen-1")
        self.mock_backup_list.assert_called_once_with(
            IsHttpRequest(), limit=50, offset=0, search={"match": [{"backup_name": "etc"}]}
        )
        rows = res.context["tab_group"].get_tab("backups")._tables["job_backups"].data
        self.assertEqual([b.id for b in rows], ["b-2", "backup-1"])  # newest first

    @create_mocks({api_freezer: ["job_get"]})
    def test_detail_of_a_missing_job_redirects_with_a_message(self):
        self.mock_job_get.side_effect = api_exceptions.NotFound("no job job-x")
        res = self.client.get(reverse("horizon:project:freezer_jobs:detail", args=["job-x"]))
        self.assertRedirectsNoFollow(res, INDEX_URL)
