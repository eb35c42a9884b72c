"""Keys panel: the real store behind the Horizon harness, plus view behaviour at the api seam.

The value under test is typed into the forms and must come back nowhere: not in any response,
not in the database (ciphertext only), not in logs (Horizon's operation log included).
"""

import logging
import os
import sys
import tempfile
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.views.debug import ExceptionReporter
from horizon.test.helpers import IsHttpRequest
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui import secrets
from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import secrets as api_secrets
from freezer_ui.dashboards.project.freezer_secrets import forms as secret_forms
from freezer_ui.models import Secret
from tests.dashboards import helpers

INDEX_URL = reverse("horizon:project:freezer_secrets:index")
CREATE_URL = reverse("horizon:project:freezer_secrets:create")
VALUE = "Tr0ub4dor&3 <b>not-html</b>"
PAYLOAD = "<img src=x onerror=alert(1)>"


def update_url(name):
    return reverse("horizon:project:freezer_secrets:update", args=[name])


def create_data(**overrides):
    data = {
        "name": "nightly-repo",
        "kind": "passphrase",
        "description": "The /etc repository",
        "password": VALUE,
        "confirm_password": VALUE,
    }
    data.update(overrides)
    return data


def assert_value_absent(test, res, value=VALUE):
    body = res.content.decode()
    for form in (value, value.replace("<", "&lt;").replace(">", "&gt;"), "Tr0ub4dor"):
        test.assertNotIn(form, body)


class StoreMixin:
    """A key file of the test's own and no leftover environment override."""

    def setUp(self):
        super().setUp()
        self._dir = tempfile.TemporaryDirectory()
        self.key_file = os.path.join(self._dir.name, "secret.key")
        self._env = os.environ.pop(secrets.KEY_FILE_ENV, None)
        self._settings = override_settings(FREEZER_UI_SECRET_KEY_FILE=self.key_file)
        self._settings.enable()
        self.store = secrets.SecretStore()

    def tearDown(self):
        self._settings.disable()
        if self._env is not None:
            os.environ[secrets.KEY_FILE_ENV] = self._env
        self._dir.cleanup()
        super().tearDown()

    def raw_rows(self):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {Secret._meta.db_table}")
            return cursor.fetchall()


class EmbeddedSecretsTests(StoreMixin, helpers.TestCase):
    def test_create_list_replace_delete_never_show_the_value(self):
        with self.assertLogs(level=logging.DEBUG) as logs:
            res = self.client.get(CREATE_URL)
            self.assertContains(res, 'type="password"')
            res = self.client.post(CREATE_URL, create_data())
            self.assertNoFormErrors(res)
            self.assertRedirectsNoFollow(res, INDEX_URL)
            assert_value_absent(self, res)

            index = self.client.get(INDEX_URL)
            self.assertContains(index, "nightly-repo")
            self.assertContains(index, "Repository passphrase")
            self.assertContains(index, "The /etc repository")
            assert_value_absent(self, index)

            page = self.client.get(update_url("nightly-repo"))
            self.assertEqual(page.status_code, 200)
            assert_value_absent(self, page)
            new = VALUE + " v2"
            res = self.client.post(
                update_url("nightly-repo"), {"password": new, "confirm_password": new}
            )
            self.assertNoFormErrors(res)
            assert_value_absent(self, res)
        self.assertEqual(self.store.reveal(self.tenant.id, "nightly-repo"), new)
        text = "\n".join(logs.output)
        self.assertIn("nightly-repo", text)  # the logs name the key...
        self.assertNotIn("Tr0ub4dor", text)  # ...never its value

        (row,) = self.raw_rows()
        self.assertNotIn("Tr0ub4dor", repr(row))
        stored = Secret.objects.get(name="nightly-repo")
        self.assertEqual(stored.project_id, self.tenant.id)
        self.assertEqual(stored.user_id, self.user.id)
        self.assertNotIn(b"Tr0ub4dor", bytes(stored.ciphertext))

        res = self.client.post(INDEX_URL, {"action": "secrets__delete__nightly-repo"})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.assertFalse(Secret.objects.exists())

    def test_a_mismatch_re_displays_the_form_empty(self):
        res = self.client.post(CREATE_URL, create_data(confirm_password=VALUE + "x"))
        self.assertFormErrors(res, 1, "The two values do not match.")
        assert_value_absent(self, res)
        self.assertContains(res, 'value="nightly-repo"')  # the rest of the form is kept
        self.assertFalse(Secret.objects.exists())

    def test_a_duplicate_name_is_a_field_error(self):
        self.client.post(CREATE_URL, create_data())
        res = self.client.post(CREATE_URL, create_data(password="other", confirm_password="other"))
        self.assertFormErrors(res, 1, "a secret of this name already exists")
        self.assertEqual(self.store.reveal(self.tenant.id, "nightly-repo"), VALUE)

    def test_bad_names_are_refused_by_the_form(self):
        for name in ("../../etc/passwd", "a b", "-x"):
            res = self.client.post(CREATE_URL, create_data(name=name))
            self.assertFormErrors(res, 1)
            assert_value_absent(self, res)
        self.assertFalse(Secret.objects.exists())

    def test_html_in_a_description_is_escaped(self):
        self.client.post(CREATE_URL, create_data(description=PAYLOAD))
        res = self.client.get(INDEX_URL)
        self.assertNotContains(res, PAYLOAD)
        self.assertContains(res, "&lt;img src=x onerror=alert(1)&gt;")

    def test_another_projects_keys_are_invisible_and_untouchable(self):
        self.store.create(
            "other-project",
            "mallory",
            "theirs",
            "their value",
            description="mallory-only-description",
        )
        res = self.client.get(INDEX_URL)
        self.assertNotContains(res, "theirs")
        # A distinctive marker: a two-letter one matched a random CSRF token in CI once.
        self.assertNotContains(res, "mallory-only-description")
        res = self.client.get(update_url("theirs"))
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.client.post(update_url("theirs"), {"password": "pwn", "confirm_password": "pwn"})
        self.client.post(INDEX_URL, {"action": "secrets__delete__theirs"})
        self.assertEqual(self.store.reveal("other-project", "theirs"), "their value")

    def test_an_unsafe_key_file_is_reported_not_bypassed(self):
        self.client.post(CREATE_URL, create_data())
        os.chmod(self.key_file, 0o644)
        res = self.client.post(
            update_url("nightly-repo"), {"password": "new one", "confirm_password": "new one"}
        )
        self.assertEqual(res.status_code, 200)  # the form stays open, with the reason
        messages = [str(m) for m in res.context["messages"]]
        self.assertIn("Unable to replace the value of the key.", " ".join(messages))
        os.chmod(self.key_file, 0o600)
        self.assertEqual(self.store.reveal(self.tenant.id, "nightly-repo"), VALUE)

    @override_settings(FREEZER_UI_API_MODE="remote", FREEZER_UI_API_URL="http://127.0.0.1:9")
    def test_remote_mode_says_where_the_keys_live(self):
        res = self.client.get(INDEX_URL)
        self.assertContains(res, "Agents that run on other hosts cannot read them")
        self.client.post(CREATE_URL, create_data())
        self.assertContains(self.client.get(INDEX_URL), "nightly-repo")


class ErrorReportTests(StoreMixin, helpers.TestCase):
    def test_a_crash_below_the_form_is_reported_without_the_value(self):
        with (
            mock.patch.object(secrets.MasterKey, "seal", side_effect=RuntimeError("boom")),
            self.assertLogs(level=logging.DEBUG) as logs,
        ):
            res = self.client.post(CREATE_URL, create_data())
        self.assertIn("Unable to create the key.", str(list(res.context["messages"])[0]))
        assert_value_absent(self, res)
        self.assertNotIn("Tr0ub4dor", "\n".join(logs.output))
        self.assertFalse(Secret.objects.exists())

    def test_error_reports_mask_the_value_in_every_frame_below_the_form(self):
        # Django's debug page and admin mails list each frame's local variables; the value
        # sits in the API's and the store's frames under the name "value".
        request = RequestFactory().post(CREATE_URL, create_data())
        request.user = mock.Mock(project_id=self.tenant.id, id=self.user.id)
        form = secret_forms.CreateSecretForm(request, data=create_data())
        self.assertTrue(form.is_valid())
        with mock.patch.object(secrets.MasterKey, "seal", side_effect=_boom):
            try:
                api_secrets.secret_create(request, "plain-call", VALUE)
            except RuntimeError:
                unmasked = frame_variables(request)
            # An error Horizon does not handle escapes the form, as a bug would.
            with mock.patch.object(secret_forms.exceptions, "handle", side_effect=_reraise):
                try:
                    form.handle(request, form.cleaned_data)
                except RuntimeError:
                    masked = frame_variables(request)
        self.assertIn("Tr0ub4dor", unmasked)  # the reporter does show plain frames' locals
        self.assertIn("\ncreate: ", masked)  # the store's frame is in the report...
        self.assertNotIn("Tr0ub4dor", masked)  # ...with its locals masked


def frame_variables(request):
    """Every frame's local variables as an error report (debug page, admin mail) shows them."""
    frames = ExceptionReporter(request, *sys.exc_info()).get_traceback_frames()
    # The test's own frame holds what the test keeps; the frames under test are the others.
    return "\n".join(f"{f['function']}: {f['vars']}" for f in frames if f["filename"] != __file__)


def _boom(*args, **kwargs):
    raise RuntimeError("boom")  # a new exception (and traceback) each time


def _reraise(*args, **kwargs):
    raise  # noqa: PLE0704 - re-raise the exception being handled, as an unknown one would


OPERATION_LOG = {
    "OPERATION_LOG_ENABLED": True,
    "MIDDLEWARE": [*settings.MIDDLEWARE, "horizon.middleware.OperationLogMiddleware"],
}


@override_settings(**OPERATION_LOG)
class OperationLogTests(StoreMixin, helpers.TestCase):
    """An operator who turns Horizon's operation log on still never logs a value."""

    @pytest.fixture(autouse=True)
    def _caplog(self, caplog):
        self.caplog = caplog

    def test_posts_are_logged_masked(self):
        with self.caplog.at_level(logging.INFO, logger="horizon.operation_log"):
            self.client.post(CREATE_URL, create_data())
            self.client.post(
                update_url("nightly-repo"), {"password": VALUE, "confirm_password": VALUE}
            )
        logged = [r.getMessage() for r in self.caplog.records if r.name == "horizon.operation_log"]
        self.assertEqual(len(logged), 2)
        self.assertIn("nightly-repo", logged[0])
        self.assertIn("********", logged[0])
        self.assertNotIn("Tr0ub4dor", self.caplog.text)


class SecretsViewTests(helpers.TestCase):
    """View behaviour with the api seam mocked (what the views send, how they report)."""

    @create_mocks({api_secrets: ["secret_list"]})
    def test_index_lists_names_kinds_descriptions(self):
        info = api_secrets.SecretInfo(
            name="s3-creds",
            kind="storage_credential",
            description="",
            user_id="1",
            created_at=None,
            updated_at=None,
        )
        self.mock_secret_list.return_value = [info]
        res = self.client.get(INDEX_URL)
        self.assertTemplateUsed(res, "freezer_ui/project/freezer_secrets/index.html")
        self.assertContains(res, "s3-creds")
        self.assertContains(res, "Storage credential")
        self.assertContains(res, "secrets__delete__s3-creds")
        self.assertContains(res, update_url("s3-creds"))
        self.mock_secret_list.assert_called_once_with(IsHttpRequest())

    @create_mocks({api_secrets: ["secret_list"]})
    def test_unavailable_store_is_a_message_not_an_empty_list(self):
        self.mock_secret_list.side_effect = api_exceptions.Unavailable("no key file")
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertIn("Unable to retrieve keys.", str(list(res.context["messages"])[0]))
        self.assertNotContains(res, "No keys.")

    @create_mocks({api_secrets: ["secret_create"]})
    def test_create_sends_the_form_to_the_api(self):
        res = self.client.post(CREATE_URL, create_data(kind="storage_credential"))
        self.assertNoFormErrors(res)
        self.mock_secret_create.assert_called_once_with(
            IsHttpRequest(), "nightly-repo", VALUE, "storage_credential", "The /etc repository"
        )

    @create_mocks({api_secrets: ["secret_create"]})
    def test_api_validation_errors_land_on_the_fields(self):
        self.mock_secret_create.side_effect = api_exceptions.ValidationError(
            {"value": "at most 65536 bytes"}
        )
        res = self.client.post(CREATE_URL, create_data())
        self.assertFormErrors(res, 1, "at most 65536 bytes")
        assert_value_absent(self, res)

    @create_mocks({api_secrets: ["secret_get", "secret_update"]})
    def test_replace_sends_only_the_value(self):
        self.mock_secret_get.return_value = api_secrets.SecretInfo(
            "repo", "passphrase", "", "1", None, None
        )
        spaced = {"password": " spaced ", "confirm_password": " spaced "}
        res = self.client.post(update_url("repo"), spaced)
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_secret_update.assert_called_once_with(IsHttpRequest(), "repo", " spaced ")
