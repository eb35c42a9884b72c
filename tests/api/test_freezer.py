"""freezer_ui.api.freezer: the functions views call, built from request.user."""

import socket
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from freezer_ui.api import freezer as api
from freezer_ui.api import resources
from freezer_ui.api.exceptions import Forbidden, NotFound, Unavailable, ValidationError
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.api.transports.remote import RemoteTransport
from tests.api.conftest import HOST, backup_action, job_doc


def make_request(project="proj-a", user="alice", roles=("member",), catalog=()):
    user = SimpleNamespace(
        id=user,
        project_id=project,
        roles=[{"name": role} for role in roles],
        token=SimpleNamespace(id="horizon-token"),
        endpoint="http://127.0.0.1:1/v3",
        service_catalog=list(catalog),
        services_region="RegionOne",
    )
    return SimpleNamespace(user=user)


@pytest.fixture
def member(db):
    request = make_request()
    assert api.client_create(request, {"client_id": HOST, "hostname": HOST}) == HOST
    return request


def test_factory_builds_the_client_from_request_user(db):
    client = api.freezerclient(make_request(project="p1", user="u1", roles=("admin", "member")))
    assert isinstance(client.transport, EmbeddedTransport)
    assert (client.context.project_id, client.context.user_id) == ("p1", "u1")
    assert client.context.is_admin


def test_job_functions_round_trip(member):
    job_id = api.job_create(member, job_doc())
    job = api.job_get(member, job_id)
    assert isinstance(job, resources.Job)
    assert (job.id, job.client_id, job.schedule_interval) == (job_id, HOST, "6 hours")
    assert (job.backup_name, job.path_to_backup, job.engine_name, job.storage) == (
        "etc",
        "/etc",
        "tar",
        "local",
    )
    api.job_update(member, job_id, {"description": "changed"})
    api.job_start(member, job_id)
    job = api.job_get(member, job_id)
    assert (job.description, job.event, job.status) == ("changed", "start", "")
    api.job_stop(member, job_id)
    api.job_abort(member, job_id)
    assert api.job_get(member, job_id).event == "abort"

    jobs, has_more = api.job_list(member, limit=1)
    assert [j.id for j in jobs] == [job_id] and has_more is False
    api.job_delete(member, job_id)
    with pytest.raises(NotFound):
        api.job_get(member, job_id)


def test_lists_return_resources_and_has_more(member):
    for name in ("alpha", "bravo", "charlie"):
        api.action_create(member, {"freezer_action": backup_action(backup_name=name)})
    actions, has_more = api.action_list(member, limit=2)
    assert [a.freezer_action["backup_name"] for a in actions] == ["alpha", "bravo"] and has_more
    actions, has_more = api.action_list(member, limit=2, offset=2)
    assert [a.freezer_action["backup_name"] for a in actions] == ["charlie"] and not has_more
    actions, _ = api.action_list(member, search="CHARLIE")
    assert [a.freezer_action["backup_name"] for a in actions] == ["charlie"]
    actions, has_more = api.action_list(member, offset=1, search="charlie")
    assert actions == [] and not has_more


def test_all_projects_is_refused_to_members(member):
    for list_function in (api.job_list, api.backup_list, api.client_list, api.session_list):
        with pytest.raises(Forbidden):
            list_function(member, all_projects=True)


def test_sessions_clients_backups(member):
    session_id = api.session_create(member, {"schedule": {}, "description": "s"})
    job_id = api.job_create(member, job_doc())
    api.session_add_job(member, session_id, job_id)
    assert api.session_start(member, session_id, job_id, 0)["result"] == "success"
    session = api.session_get(member, session_id)
    assert (session.description, session.status, list(session.jobs)) == ("s", "running", [job_id])
    api.session_remove_job(member, session_id, job_id)
    api.session_update(member, session_id, {"description": "t"})
    assert api.session_get(member, session_id).description == "t"
    api.session_delete(member, session_id)

    [client], _ = api.client_list(member)
    assert (client.id, client.hostname) == (HOST, HOST) and "tar" in client.supported_engines
    assert api.client_get(member, HOST).uuid == client.uuid

    client = api.freezerclient(member)
    backup_id = client.backups.create(
        {
            "backup_name": "etc",
            "container": "/srv",
            "hostname": HOST,
            "time_stamp": 1700000000,
            "engine_name": "tar",
            "level": 0,
            "generation_id": "g1",
        }
    )
    backup = api.backup_get(member, backup_id)
    assert (backup.id, backup.time_stamp, backup.generation_id, backup.status) == (
        backup_id,
        1700000000,
        "g1",
        "available",
    )
    api.backup_delete(member, backup_id)
    assert api.backup_list(member) == ([], False)
    api.client_delete(member, HOST)
    assert api.client_list(member) == ([], False)


def test_unknown_mode_is_a_configuration_error(settings, db):
    settings.FREEZER_UI_API_MODE = "carrier-pigeon"
    with pytest.raises(ImproperlyConfigured):
        api.freezerclient(make_request())


def test_remote_mode_without_endpoint_is_unavailable(settings):
    settings.FREEZER_UI_API_MODE = "remote"
    settings.FREEZER_UI_API_URL = None
    with pytest.raises(Unavailable) as err:
        api.job_list(make_request(catalog=[{"type": "identity", "endpoints": []}]))
    assert "backup" in str(err.value)


def test_remote_mode_with_unreachable_api_is_unavailable(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.FREEZER_UI_API_MODE = "remote"
    settings.FREEZER_UI_API_URL = f"http://127.0.0.1:{port}"
    request = make_request()
    request.user.endpoint = f"http://127.0.0.1:{port}/v3"
    assert isinstance(api.freezerclient(request).transport, RemoteTransport)
    with pytest.raises(Unavailable):
        api.job_list(request)


@pytest.mark.parametrize(
    "key,path,allowed",
    [
        ("path_to_backup", "/srv/data", True),
        ("path_to_backup", "/srv", True),
        ("path_to_backup", "/etc", False),
        ("path_to_backup", "/srv/../etc", False),
        ("path_to_backup", "srv/data", False),
        ("restore_abs_path", "/home/u/restore", True),
        ("restore_abs_path", "/homework", False),
        ("restore_abs_path", "/", False),
    ],
)
def test_paths_must_stay_inside_the_allowed_roots(member, settings, key, path, allowed):
    settings.FREEZER_UI_ALLOWED_ROOTS = ["/srv", "/home/"]
    fields = {"path_to_backup": "/srv/data", key: path}
    doc = job_doc(job_actions=[{"freezer_action": backup_action(**fields)}])
    if allowed:
        api.job_create(member, doc)
        return
    with pytest.raises(ValidationError) as err:
        api.job_create(member, doc)
    assert f"job_actions.0.freezer_action.{key}" in err.value.errors
    with pytest.raises(ValidationError) as err:
        api.action_create(member, {"freezer_action": backup_action(**fields)})
    assert f"freezer_action.{key}" in err.value.errors
    assert api.job_list(member) == ([], False)
    assert api.action_list(member) == ([], False)


def test_default_root_allows_any_absolute_path(member):
    api.job_create(
        member, job_doc(job_actions=[{"freezer_action": backup_action(path_to_backup="/var/lib")}])
    )
    with pytest.raises(ValidationError):
        api.job_update(
            member, "x", {"job_actions": [{"freezer_action": backup_action(path_to_backup="var")}]}
        )
