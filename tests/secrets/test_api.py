"""freezer_ui.api.secrets over the real store and database: what the panels can and cannot see."""

import dataclasses
import logging
from types import SimpleNamespace

import pytest

from freezer_ui import secrets
from freezer_ui.api import exceptions
from freezer_ui.api import secrets as api_secrets
from freezer_ui.models import Secret

VALUE = "s3cr3t-Passphrase!"
pytestmark = pytest.mark.django_db


def request_for(project="proj-a", user="alice"):
    return SimpleNamespace(user=SimpleNamespace(project_id=project, id=user))


@pytest.fixture(autouse=True)
def key_file(tmp_path, settings, monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV, raising=False)
    settings.FREEZER_UI_SECRET_KEY_FILE = str(tmp_path / "secret.key")
    return tmp_path / "secret.key"


def test_create_list_update_delete_never_return_a_value(caplog):
    request = request_for()
    with caplog.at_level(logging.DEBUG):
        created = api_secrets.secret_create(
            request, "repo", VALUE, "passphrase", "nightly repository"
        )
        listed = api_secrets.secret_list(request)
        updated = api_secrets.secret_update(request, "repo", VALUE + "2")
    assert [s.name for s in listed] == ["repo"] and listed[0].id == "repo"
    assert listed[0].kind == "passphrase" and listed[0].description == "nightly repository"
    assert updated.updated_at >= created.updated_at
    for info in (created, listed[0], updated):
        assert set(dataclasses.asdict(info)) == {
            "name", "kind", "description", "user_id", "created_at", "updated_at",
        }  # fmt: skip
        assert VALUE not in repr(info)
    assert VALUE not in caplog.text and "repo" in caplog.text
    assert secrets.SecretStore().reveal("proj-a", "repo") == VALUE + "2"
    api_secrets.secret_delete(request, "repo")
    assert api_secrets.secret_list(request) == []


def test_another_projects_names_are_invisible():
    api_secrets.secret_create(request_for("proj-a"), "repo", VALUE)
    other = request_for("proj-b", "mallory")
    assert api_secrets.secret_list(other) == []
    for call in (
        lambda: api_secrets.secret_get(other, "repo"),
        lambda: api_secrets.secret_update(other, "repo", "overwritten"),
        lambda: api_secrets.secret_delete(other, "repo"),
    ):
        with pytest.raises(exceptions.NotFound):
            call()
    assert secrets.SecretStore().reveal("proj-a", "repo") == VALUE
    # The same name in the other project is a different secret.
    api_secrets.secret_create(other, "repo", "theirs")
    assert secrets.SecretStore().reveal("proj-a", "repo") == VALUE


@pytest.mark.parametrize(
    "field, args",
    [
        ("name", ("bad name", VALUE)),
        ("name", ("", VALUE)),
        ("value", ("repo", "")),
        ("kind", ("repo", VALUE, "ssh-key")),
        ("description", ("repo", VALUE, "passphrase", "x" * 2000)),
    ],
)
def test_validation_errors_name_the_field(field, args):
    with pytest.raises(exceptions.ValidationError) as e:
        api_secrets.secret_create(request_for(), *args)
    assert list(e.value.errors) == [field]
    assert VALUE not in str(e.value)
    assert not Secret.objects.exists()


def test_a_duplicate_name_is_a_name_error():
    api_secrets.secret_create(request_for(), "repo", VALUE)
    with pytest.raises(exceptions.ValidationError) as e:
        api_secrets.secret_create(request_for(user="bob"), "repo", "other")
    assert list(e.value.errors) == ["name"]


def test_key_problems_are_unavailable_and_logged_for_the_operator(key_file, caplog):
    api_secrets.secret_create(request_for(), "repo", VALUE)
    key_file.chmod(0o644)
    with pytest.raises(exceptions.Unavailable, match="master key is not available") as e:
        api_secrets.secret_update(request_for(), "repo", VALUE + "2")
    # The tenant is not told the server's paths; the operator's log has them.
    assert str(key_file) not in str(e.value)
    assert f"chmod 600 {key_file}" in caplog.text
    assert VALUE not in str(e.value) and VALUE not in caplog.text
    key_file.chmod(0o600)
    assert secrets.SecretStore().reveal("proj-a", "repo") == VALUE


def test_remote_mode_still_uses_the_dashboard_database(settings):
    settings.FREEZER_UI_API_MODE = "remote"
    settings.FREEZER_UI_API_URL = "http://127.0.0.1:9"  # never contacted
    api_secrets.secret_create(request_for(), "repo", VALUE)
    assert [s.name for s in api_secrets.secret_list(request_for())] == ["repo"]


def test_no_database_is_unavailable(settings):
    settings.FREEZER_UI_DATABASE = "not-configured"
    with pytest.raises(exceptions.Unavailable, match="not-configured"):
        api_secrets.secret_list(request_for())


def test_list_by_kind_for_the_passphrase_picker():
    request = request_for()
    api_secrets.secret_create(request, "repo", VALUE, "passphrase")
    api_secrets.secret_create(request, "s3", VALUE, "storage_credential")
    assert [s.name for s in api_secrets.secret_list(request)] == ["repo", "s3"]
    assert [s.name for s in api_secrets.secret_list(request, kind="passphrase")] == ["repo"]
    with pytest.raises(exceptions.ValidationError) as e:
        api_secrets.secret_list(request, kind="password")
    assert list(e.value.errors) == ["kind"]
