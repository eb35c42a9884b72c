"""The jobs wizard against the real API layer, embedded store and key store (no mocks).

Each saved document is read back and put through freezer-api's rules
(``freezer_ui.api.schemas``), the same ones a real freezer-api 19.0.0 applies.
"""

import os
import tempfile

from django.test import override_settings
from django.urls import reverse

from freezer_ui import secrets
from freezer_ui.api import schemas
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.transports.embedded import EmbeddedTransport
from tests.dashboards import helpers
from tests.dashboards.project.test_jobs import all_errors, form_data, step_errors

INDEX_URL = reverse("horizon:project:freezer_jobs:index")
CREATE_URL = reverse("horizon:project:freezer_jobs:create")


def freezer_api_accepts(stored, client_doc):
    """Put a stored job through freezer-api's create rules and its client capability check
    (each raises ValidationError on a document freezer-api would refuse)."""
    doc = {k: v for k, v in stored.items() if k not in ("job_id", "project_id", "user_id")}
    # The stored job refers to its actions by ID; a new job would carry them inline.
    doc["job_actions"] = [
        {k: v for k, v in a.items() if k not in ("action_id", "project_id", "user_id")}
        for a in stored["job_actions"]
    ]
    schemas.new_job(doc, project_id="p", user_id="u")
    schemas.check_client_capabilities([a["freezer_action"] for a in doc["job_actions"]], client_doc)


class WizardTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self.store = FreezerClient(
            EmbeddedTransport(), project_id=self.tenant.id, user_id=self.user.id, roles=["member"]
        )
        self.store.clients.create(
            {"client_id": "host-1", "hostname": "host-1", "supported_engines": ["tar"],
             "supported_storages": ["local", "swift"],
             "supported_actions": ["backup", "restore", "admin", "info"]}
        )  # fmt: skip
        self.store.clients.create(
            {"client_id": "nova-node", "hostname": "nova-node", "supported_engines": ["nova"],
             "supported_storages": ["swift"], "supported_actions": ["backup", "restore"]}
        )  # fmt: skip
        # A key store of the test's own: the passphrase picker lists its keys.
        self._dir = tempfile.TemporaryDirectory()
        self._env = os.environ.pop(secrets.KEY_FILE_ENV, None)
        self._settings = override_settings(
            FREEZER_UI_SECRET_KEY_FILE=os.path.join(self._dir.name, "secret.key"),
            FREEZER_UI_ALLOWED_ROOTS=["/etc", "/srv"],
        )
        self._settings.enable()
        keys = secrets.SecretStore()
        keys.create(self.tenant.id, self.user.id, "etc-repo", "correct horse", kind="passphrase")
        keys.create(self.tenant.id, self.user.id, "s3-login", "AKIA...", kind="storage_credential")
        keys.create("other-project", "u2", "their-repo", "not yours", kind="passphrase")

    def tearDown(self):
        self._settings.disable()
        if self._env is not None:
            os.environ[secrets.KEY_FILE_ENV] = self._env
        self._dir.cleanup()
        super().tearDown()

    def stored_jobs(self):
        return list(self.store.jobs.list(limit=100))

    def client_doc(self, client_id):
        return self.store.clients.get(client_id)

    # ------------------------------------------------------------------ create
    def test_tar_job_with_excludes_passphrase_and_retention(self):
        res = self.client.post(
            CREATE_URL,
            form_data(
                exclude="*.tmp\n\n  cache/*  \n",
                one_file_system="on",
                passphrase_ref="etc-repo",
                keep_last="7",
                keep_monthly="12",
            ),
        )
        self.assertNoWorkflowErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        (job,) = self.stored_jobs()
        backup, admin = (a["freezer_action"] for a in job["job_actions"])
        self.assertEqual(backup["exclude"], ["*.tmp", "cache/*"])
        self.assertIs(backup["one_file_system"], True)
        self.assertEqual(backup["passphrase_ref"], "etc-repo")
        self.assertEqual(backup["mode"], "fs")
        self.assertNotIn("nova_inst_id", backup)
        self.assertEqual(
            admin,
            {"action": "admin", "mode": "fs", "storage": "local", "container": "/srv/backups",
             "backup_name": "etc", "keep_last": 7, "keep_monthly": 12,
             "passphrase_ref": "etc-repo"},
        )  # fmt: skip
        # The passphrase itself is nowhere in the job.
        self.assertNotIn("correct horse", str(job))
        freezer_api_accepts(job, self.client_doc("host-1"))

    def assertNoWorkflowErrors(self, res):
        if res.status_code == 200 and "workflow" in (res.context or {}):
            self.assertEqual(step_errors(res), {})

    def test_picker_offers_this_projects_passphrases_only(self):
        res = self.client.get(CREATE_URL)
        storage = res.context["workflow"].get_step("storage").action
        self.assertEqual([c[0] for c in storage.fields["passphrase_ref"].choices], ["", "etc-repo"])
        # A key of another project (or not a passphrase) cannot be posted either.
        for name in ("their-repo", "s3-login"):
            res = self.client.post(CREATE_URL, form_data(passphrase_ref=name))
            self.assertIn("passphrase_ref", all_errors(res), name)
        self.assertEqual(self.stored_jobs(), [])

    def test_engine_the_client_lacks_is_refused_on_the_server(self):
        # host-1 registered tar only; a hand-made post asking for rsync or nova is refused.
        for engine in ("rsync", "nova", "zfs"):
            res = self.client.post(CREATE_URL, form_data(engine_name=engine, nova_inst_id="x"))
            self.assertEqual(res.status_code, 200)
            self.assertIn("engine_name", step_errors(res)["engine"], engine)
        self.assertEqual(self.stored_jobs(), [])

    def test_engine_choices_follow_the_chosen_client(self):
        res = self.client.post(
            CREATE_URL, form_data(client_id="nova-node", engine_name="nova", storage="swift")
        )
        engine = res.context["workflow"].get_step("engine").action
        self.assertEqual([c[0] for c in engine.fields["engine_name"].choices], ["nova"])
        # nova needs the server's ID, not a path.
        self.assertIn("nova_inst_id", step_errors(res)["engine"])
        storage = res.context["workflow"].get_step("storage").action
        self.assertEqual([c[0] for c in storage.fields["storage"].choices], ["swift"])

    def test_nova_job_document(self):
        res = self.client.post(
            CREATE_URL,
            form_data(client_id="nova-node", engine_name="nova", storage="swift",
                      container="backups", nova_inst_id="0b1c-server",
                      # Fields of another engine left in the form stay out of the document.
                      path_to_backup="/etc", exclude="*.tmp"),
        )  # fmt: skip
        self.assertNoWorkflowErrors(res)
        (job,) = self.stored_jobs()
        (entry,) = job["job_actions"]
        action = entry["freezer_action"]
        self.assertEqual(action["mode"], "nova")
        self.assertEqual(action["nova_inst_id"], "0b1c-server")
        self.assertNotIn("path_to_backup", action)
        self.assertNotIn("exclude", action)
        freezer_api_accepts(job, self.client_doc("nova-node"))

    def test_retention_needs_a_client_that_runs_admin_actions(self):
        res = self.client.post(
            CREATE_URL,
            form_data(client_id="nova-node", engine_name="nova", storage="swift",
                      container="backups", nova_inst_id="srv-1", keep_last="3"),
        )  # fmt: skip
        self.assertIn("does not run admin actions", str(step_errors(res)["retention"]))
        self.assertEqual(self.stored_jobs(), [])

    def test_paths_outside_the_allowed_roots_are_field_errors(self):
        res = self.client.post(
            CREATE_URL, form_data(path_to_backup="/srv/../root", container="/var/backups")
        )
        errors = all_errors(res)
        self.assertIn("/etc, /srv", errors["path_to_backup"][0])
        self.assertIn("/etc, /srv", errors["container"][0])
        res = self.client.post(CREATE_URL, form_data(path_to_backup="etc"))
        self.assertIn("path_to_backup", all_errors(res))
        self.assertEqual(self.stored_jobs(), [])

    def test_capabilities_are_read_again_when_posting(self):
        # The client re-registers without local storage after the wizard was opened: the
        # post is checked against what the client supports now, not what the page offered.
        res = self.client.get(CREATE_URL)
        self.store.clients.create(
            {"client_id": "host-1", "hostname": "host-1", "supported_engines": ["tar"],
             "supported_storages": ["swift"], "supported_actions": ["backup", "admin"]}
        )  # fmt: skip
        res = self.client.post(CREATE_URL, form_data(storage="local"))
        # The wizard reads the capabilities again when it validates: the field says why.
        self.assertIn("storage", step_errors(res)["storage"])
        self.assertEqual(self.stored_jobs(), [])

    def test_edit_says_which_stored_values_are_gone(self):
        job = self.create(passphrase_ref="etc-repo")
        # The agent re-registers without local storage, and the key is deleted.
        self.store.clients.create(
            {"client_id": "host-1", "hostname": "host-1", "supported_engines": ["tar"],
             "supported_storages": ["swift"], "supported_actions": ["backup", "admin"]}
        )  # fmt: skip
        secrets.SecretStore().delete(self.tenant.id, "etc-repo")
        url = reverse("horizon:project:freezer_jobs:update", args=[job["job_id"]])
        res = self.client.get(url)
        self.assertContains(res, "This job used &quot;local&quot;, which is not available any more")
        self.assertContains(
            res, "This job used &quot;etc-repo&quot;, which is not available any more"
        )
        self.assertNotContains(res, "This job used &quot;tar&quot;")

    def test_a_stored_engine_name_with_markup_is_escaped_in_the_help_text(self):
        # freezer-api does not check engine_name: another client may store anything there.
        job = self.create()
        actions = [dict(a) for a in job["job_actions"]]
        evil = '"><img src=x onerror=alert(1)>'
        action = dict(actions[0]["freezer_action"], engine_name=evil)
        actions[0] = {k: v for k, v in actions[0].items() if k != "action_id"}
        actions[0]["freezer_action"] = action
        self.store.jobs.update(job["job_id"], {"job_actions": actions})
        url = reverse("horizon:project:freezer_jobs:update", args=[job["job_id"]])
        res = self.client.get(url)
        self.assertNotContains(res, "<img src=x")
        self.assertContains(res, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")

    # ------------------------------------------------------------------ clone and edit
    def create(self, **overrides):
        res = self.client.post(CREATE_URL, form_data(**overrides))
        self.assertNoWorkflowErrors(res)
        (job,) = [j for j in self.stored_jobs() if j["description"] == overrides.get(
            "description", "Nightly /etc")]  # fmt: skip
        return job

    def test_clone_is_a_prefilled_wizard_without_schedule_events(self):
        job = self.create(keep_daily="7", exclude="*.log", passphrase_ref="etc-repo")
        self.store.jobs.start(job["job_id"])  # the original has an event, the copy must not
        url = reverse("horizon:project:freezer_jobs:clone", args=[job["job_id"]])
        res = self.client.get(url)
        context = res.context["workflow"].context
        self.assertEqual(context["description"], "Copy of Nightly /etc")
        self.assertEqual(context["keep_daily"], 7)
        self.assertEqual(context["exclude"], "*.log")
        self.assertEqual(context["passphrase_ref"], "etc-repo")
        self.assertEqual(context["interval_number"], 6)
        self.assertContains(res, 'value="Copy of Nightly /etc"')

        res = self.client.post(
            url,
            form_data(description="Copy of Nightly /etc", keep_daily="7", exclude="*.log",
                      passphrase_ref="etc-repo"),
        )  # fmt: skip
        self.assertNoWorkflowErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        original = self.store.jobs.get(job["job_id"])
        (copy,) = [j for j in self.stored_jobs() if j["job_id"] != job["job_id"]]
        self.assertEqual(copy["description"], "Copy of Nightly /etc")
        self.assertEqual(original["job_schedule"]["event"], "start")
        self.assertNotIn(copy["job_schedule"].get("event"), ("start", "stop", "abort"))
        self.assertFalse(copy["job_schedule"].get("status"))
        self.assertEqual(copy["job_schedule"]["schedule_interval"], "6 hours")
        self.assertEqual(
            [a["freezer_action"] for a in copy["job_actions"]],
            [a["freezer_action"] for a in original["job_actions"]],
        )
        freezer_api_accepts(copy, self.client_doc("host-1"))

    def test_clone_of_a_missing_job_redirects(self):
        url = reverse("horizon:project:freezer_jobs:clone", args=["no-such-job"])
        self.assertRedirectsNoFollow(self.client.get(url), INDEX_URL)

    def test_edit_changes_retention_and_keeps_other_actions(self):
        job = self.create(keep_last="5")
        # An action the wizard does not show (added by another freezer-api client).
        actions = [dict(a) for a in job["job_actions"]]
        actions.append({"freezer_action": {"action": "info", "mode": "fs", "storage": "local",
                                           "container": "/srv/backups"}})  # fmt: skip
        self.store.jobs.update(job["job_id"], {"job_actions": actions})
        url = reverse("horizon:project:freezer_jobs:update", args=[job["job_id"]])
        self.assertEqual(self.client.get(url).context["workflow"].context["keep_last"], 5)

        res = self.client.post(url, form_data(keep_last="", keep_weekly="4", exclude="*.iso"))
        self.assertNoWorkflowErrors(res)
        stored = self.store.jobs.get(job["job_id"])
        kinds = [a["freezer_action"]["action"] for a in stored["job_actions"]]
        self.assertEqual(kinds, ["backup", "admin", "info"])
        admin = stored["job_actions"][1]["freezer_action"]
        self.assertEqual(admin.get("keep_weekly"), 4)
        self.assertNotIn("keep_last", admin)
        self.assertEqual(stored["job_actions"][0]["freezer_action"]["exclude"], "*.iso")

        # No retention left: the admin action goes, the other actions stay.
        res = self.client.post(url, form_data(exclude="*.iso"))
        self.assertNoWorkflowErrors(res)
        stored = self.store.jobs.get(job["job_id"])
        self.assertEqual([a["freezer_action"]["action"] for a in stored["job_actions"]],
                         ["backup", "info"])  # fmt: skip
        freezer_api_accepts(stored, self.client_doc("host-1"))


class WizardStepValidationTests(helpers.TestCase):
    """Horizon's wizard validates a step over ajax when the user presses Next."""

    def setUp(self):
        super().setUp()
        self.store = FreezerClient(
            EmbeddedTransport(), project_id=self.tenant.id, user_id=self.user.id, roles=["member"]
        )
        self.store.clients.create(
            {"client_id": "host-1", "hostname": "host-1", "supported_engines": ["tar"]}
        )

    def validate(self, start, end, data):
        res = self.client.post(
            CREATE_URL,
            data,
            HTTP_X_HORIZON_VALIDATE_STEP_START=str(start),
            HTTP_X_HORIZON_VALIDATE_STEP_END=str(end),
        )
        self.assertEqual(res.status_code, 200)
        return res.json()

    def test_next_checks_the_engine_against_the_chosen_client(self):
        result = self.validate(1, 1, form_data(engine_name="rsync"))
        self.assertTrue(result["has_errors"])
        self.assertEqual(list(result["errors"]), ["engine"])
        self.assertIn("engine_name", result["errors"]["engine"])
        self.assertFalse(self.validate(1, 1, form_data())["has_errors"])

    def test_step_errors_never_repeat_posted_markup(self):
        # The wizard's script inserts these messages into the page as HTML.
        evil = '<img src=x onerror="alert(1)">'
        data = form_data(engine_name=evil, storage=evil, passphrase_ref=evil,
                         schedule_kind=evil, interval_unit=evil, client_id=evil)  # fmt: skip
        result = self.validate(0, 4, data)
        self.assertTrue(result["has_errors"])
        self.assertNotIn("<img", str(result))
        self.assertIn("Pick one of the offered choices.", str(result))

    def test_prefilled_wizards_open_at_the_first_step(self):
        self.client.post(
            CREATE_URL, form_data(schedule_kind="once", interval_number="", start_date="")
        )
        (job,) = self.store.jobs.list(limit=10)
        for name in ("clone", "update"):
            url = reverse(f"horizon:project:freezer_jobs:{name}", args=[job["job_id"]])
            res = self.client.get(url)
            self.assertEqual(res.context["workflow"].get_entry_point(), "client", name)
            self.assertContains(res, 'id="create_job__client" class="js-tab-pane active"'
                                if name == "clone" else
                                'id="update_job__client" class="js-tab-pane active"')  # fmt: skip
