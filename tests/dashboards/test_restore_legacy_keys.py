"""The restore wizard asks for the key of an encrypted upstream Freezer backup.

Horizon's harness (a logged-in member of project "1") with a real key store of the test's own
(the Keys panel's, ``freezer_ui.secrets``); the backup records and the job creation go through
the patched API seam as in tests/dashboards/project/test_restore_wizard.py. That the agent then
restores with exactly that key is tests/agent/test_legacy_keys.py (a real agent and job).
"""

import copy
import os
import shutil
import tempfile

from django.test import override_settings
from django.urls import reverse
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui import secrets
from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import resources
from tests.dashboards import helpers

WIZARD_URL = reverse("horizon:project:freezer_restore:wizard")
T0, T1 = 1893492000, 1893495600  # 2030-01-01 10:00 and 11:00 UTC


def legacy_record(backup_id, time_stamp, level, encrypted):
    """A record as ``legacy_register`` writes it for one upstream Freezer generation; with
    ``encrypted=None`` as the upstream agent writes its own (no flag, no ``freezer_legacy``)."""
    doc = copy.deepcopy(helpers.BACKUP_DOC)
    doc["backup_id"] = backup_id
    meta = doc["backup_metadata"]
    del meta["generation_id"]
    if encrypted is not None:
        meta.update(freezer_legacy=True, encrypted=encrypted)
    meta.update(
        backup_name="fs",
        hostname="legacyhost",
        container="/srv/freezer",
        engine_name="tar",
        time_stamp=time_stamp,
        level_zero_timestamp=T0,
        curr_backup_level=level,
        level=level,
    )
    return resources.Backup(doc)


class LegacyKeyTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self._dir = tempfile.mkdtemp(prefix="freezer-ui-legacy-keys-")
        self._env = os.environ.pop(secrets.KEY_FILE_ENV, None)
        self._settings = override_settings(
            FREEZER_UI_SECRET_KEY_FILE=os.path.join(self._dir, "secret.key"),
            FREEZER_UI_ALLOWED_ROOTS=[self._dir],
        )
        self._settings.enable()
        keys = secrets.SecretStore()
        keys.create(self.tenant.id, self.user.id, "old-freezer", "staple", kind="passphrase")
        keys.create(self.tenant.id, self.user.id, "s3-login", "AKIA", kind="storage_credential")
        keys.create("other-project", "u2", "their-key", "not yours", kind="passphrase")

    def tearDown(self):
        self._settings.disable()
        if self._env is not None:
            os.environ[secrets.KEY_FILE_ENV] = self._env
        shutil.rmtree(self._dir, ignore_errors=True)
        super().tearDown()

    def mock_series(self, encrypted):
        records = [legacy_record("l-1", T1, 1, encrypted), legacy_record("l-0", T0, 0, encrypted)]
        by_id = {r.id: r for r in records}

        def get(request, backup_id):
            if backup_id not in by_id:
                raise api_exceptions.NotFound("no such backup")
            return by_id[backup_id]

        self.mock_backup_get.side_effect = get
        self.mock_backup_list.return_value = (records, False)
        self.mock_client_list.return_value = ([helpers.client()], False)

    def post(self, **overrides):
        data = {
            "backup_id": "l-1",
            "when": "generation",
            "generation_id": str(T1),
            "point_in_time": "",
            "resolved_generation": "",
            "scope": "all",
            "paths": "",
            "client_id": "host-1",
            "target": os.path.join(self._dir, "restored"),
            "overwrite": "never",
            "confirm": "on",
        }
        data.update(overrides)
        return self.client.post(WIZARD_URL, data)

    def target_action(self, res):
        return res.context["workflow"].get_step("target").action

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list"]})
    def test_encrypted_backup_offers_the_projects_passphrase_keys_only(self):
        self.mock_series(encrypted=True)
        res = self.client.get(WIZARD_URL + "?backup_id=l-1")
        self.assertEqual(res.status_code, 200)
        field = self.target_action(res).fields["passphrase_ref"]
        self.assertEqual([c for c, _label in field.choices], ["", "old-freezer"])
        self.assertContains(res, "old-freezer")
        self.assertNotContains(res, "their-key")
        self.assertNotContains(res, "staple")  # a value never reaches a page

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list"]})
    def test_clear_backup_asks_for_no_key(self):
        self.mock_series(encrypted=False)
        res = self.client.get(WIZARD_URL + "?backup_id=l-1")
        self.assertNotIn("passphrase_ref", self.target_action(res).fields)

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_encrypted_backup_without_a_key_is_refused(self):
        self.mock_series(encrypted=True)
        res = self.post()
        self.assertEqual(res.status_code, 200)
        errors = self.target_action(res).errors
        self.assertIn("This backup is encrypted", str(errors["passphrase_ref"]))
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_another_projects_key_is_not_a_choice(self):
        self.mock_series(encrypted=True)
        res = self.post(passphrase_ref="their-key")
        self.assertEqual(res.status_code, 200)
        self.assertIn("passphrase_ref", self.target_action(res).errors)
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_the_chosen_key_is_the_actions_passphrase_ref(self):
        self.mock_series(encrypted=True)
        self.mock_job_create.return_value = "job-7"
        res = self.post(passphrase_ref="old-freezer")
        self.assertRedirectsNoFollow(
            res, reverse("horizon:project:freezer_restore:progress", args=["job-7"])
        )
        (call,) = self.mock_job_create.call_args_list
        action = call.args[1]["job_actions"][0]["freezer_action"]
        self.assertEqual(action["freezer_ui_format"], "freezer-legacy")
        self.assertEqual(action["passphrase_ref"], "old-freezer")
        self.assertEqual(action["legacy_timestamp"], T1)
        self.assertNotIn("staple", str(call.args[1]))  # the job names the key, never its value

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_clear_backup_action_names_no_key(self):
        self.mock_series(encrypted=False)
        self.mock_job_create.return_value = "job-8"
        self.assertEqual(self.post().status_code, 302)
        (call,) = self.mock_job_create.call_args_list
        self.assertNotIn("passphrase_ref", call.args[1]["job_actions"][0]["freezer_action"])

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_a_record_that_does_not_say_offers_the_key_without_requiring_it(self):
        # freezer 19.0.0's own records carry no encryption flag (freezer/job.py).
        self.mock_series(encrypted=None)
        res = self.client.get(WIZARD_URL + "?backup_id=l-1")
        field = self.target_action(res).fields["passphrase_ref"]
        self.assertIn("does not say whether", str(field.help_text))
        self.mock_job_create.return_value = "job-1"
        self.assertEqual(self.post().status_code, 302)
        self.assertEqual(self.post(passphrase_ref="old-freezer").status_code, 302)
        first, second = (c.args[1]["job_actions"][0]["freezer_action"]
                         for c in self.mock_job_create.call_args_list)  # fmt: skip
        self.assertNotIn("passphrase_ref", first)
        self.assertEqual(second["passphrase_ref"], "old-freezer")
