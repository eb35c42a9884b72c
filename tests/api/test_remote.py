"""Remote transport: error mapping (mocked freezerclient) and real unreachable endpoints."""

import json
import socket
from unittest import mock

import pytest
import requests
from freezerclient import exceptions as freezer_exceptions
from freezerclient.v2.client import Client
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import (
    Conflict,
    Forbidden,
    FreezerAPIError,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from freezer_ui.api.transports.remote import RemoteTransport
from tests.api.conftest import job_doc


def api_error(status, description="it went wrong"):
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"title": "t", "description": description}).encode()
    return freezer_exceptions.ApiClientException(response)


def remote(freezer, roles=("member",), project="proj-a"):
    transport = RemoteTransport(project_id=project, freezer=freezer)
    return FreezerClient(transport, project_id=project, user_id="alice", roles=roles)


@pytest.mark.parametrize(
    "status,expected",
    [
        (400, ValidationError),
        (422, ValidationError),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
    ],
)
def test_http_errors_map_to_our_exceptions(status, expected):
    freezer = mock.Mock()
    freezer.jobs.list_all.side_effect = api_error(status, "refused: bad thing")
    with pytest.raises(expected) as err:
        remote(freezer).jobs.list()
    assert "bad thing" in str(err.value)
    assert "[*] Error" not in str(err.value)


def test_server_failure_is_a_plain_recoverable_error():
    freezer = mock.Mock()
    freezer.backups.list.side_effect = api_error(500, "db down")
    with pytest.raises(FreezerAPIError) as err:
        remote(freezer).backups.list()
    assert type(err.value) is FreezerAPIError
    assert err.value.status_code == 500 and "db down" in str(err.value)


@pytest.mark.parametrize(
    "raised",
    [
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
        ks_exceptions.ConnectFailure("keystone down"),
        ks_exceptions.EndpointNotFound(),
    ],
)
def test_connection_problems_are_unavailable(raised):
    freezer = mock.Mock()
    freezer.actions.list.side_effect = raised
    with pytest.raises(Unavailable):
        remote(freezer).actions.list()


def test_keystone_refusing_the_token_is_unauthorized():
    freezer = mock.Mock()
    freezer.sessions.get.side_effect = ks_exceptions.Unauthorized()
    with pytest.raises(Unauthorized):
        remote(freezer).sessions.get("s1")


def test_missing_and_foreign_documents_are_not_found():
    freezer = mock.Mock()
    freezer.jobs.get.side_effect = lambda job_id: {
        "mine": {"job_id": "mine", "project_id": "proj-a"},
        "theirs": {"job_id": "theirs", "project_id": "proj-b"},
    }.get(job_id)
    client = remote(freezer, roles=("admin",))
    assert client.jobs.get("mine")["job_id"] == "mine"
    for job_id in ("theirs", "absent"):
        with pytest.raises(NotFound):
            client.jobs.get(job_id)
        with pytest.raises(NotFound):
            client.jobs.delete(job_id)
    freezer.jobs.delete.assert_not_called()


def test_admin_job_list_is_filtered_to_the_project_across_server_pages():
    # freezer-api gives an admin every project's jobs; the page must hold only ours.
    jobs = [
        {"job_id": f"j{i}", "project_id": "proj-a" if i % 3 == 0 else "proj-b"} for i in range(10)
    ]

    def list_all(limit, offset, search, all_projects):
        return jobs[offset : offset + limit]

    freezer = mock.Mock()
    freezer.jobs.list_all.side_effect = list_all
    client = FreezerClient(
        RemoteTransport(project_id="proj-a", freezer=freezer, page_size=4),
        project_id="proj-a",
        user_id="root",
        roles=["admin"],
    )
    first = client.jobs.list(limit=2)
    assert [j["job_id"] for j in first] == ["j0", "j3"] and first.has_more
    second = client.jobs.list(limit=2, offset=2)
    assert [j["job_id"] for j in second] == ["j6", "j9"] and not second.has_more
    assert len(client.jobs.list(limit=50, all_projects=True)) == 10


def test_documents_are_checked_before_sending():
    freezer = mock.Mock()
    with pytest.raises(ValidationError) as err:
        remote(freezer).jobs.create(job_doc(job_schedule={"schedule_interval": "6 monthz"}))
    assert "job_schedule.schedule_interval" in err.value.errors
    freezer.jobs.create.assert_not_called()


def test_action_references_are_sent_as_full_documents():
    # freezer-api 19.0.0 answers 500 to job_actions holding only an action_id.
    action = {"action_id": "a1", "project_id": "proj-a", "freezer_action": {"action": "backup"}}
    freezer = mock.Mock()
    freezer.actions.get.return_value = action
    freezer.jobs.create.return_value = "j1"
    assert remote(freezer).jobs.create(job_doc(job_actions=[{"action_id": "a1"}])) == "j1"
    [sent] = freezer.jobs.create.call_args.args
    assert sent["job_actions"] == [action]


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_freezer_api_is_unavailable():
    url = f"http://127.0.0.1:{_closed_port()}"
    # A token that needs no Keystone: the only network peer is the (closed) freezer-api port.
    session = ks_session.Session(auth=token_endpoint.Token(url, "token"))
    freezer = Client(session=session, endpoint=url, project_id="proj-a")
    transport = RemoteTransport(project_id="proj-a", freezer=freezer, endpoint=url)
    with pytest.raises(Unavailable) as err:
        FreezerClient(transport, project_id="proj-a", user_id="alice").jobs.list()
    assert url in str(err.value)


def test_unreachable_keystone_is_unavailable():
    port = _closed_port()
    transport = RemoteTransport(
        project_id="proj-a",
        auth_url=f"http://127.0.0.1:{port}/v3",
        token="horizon-token",
        endpoint=f"http://127.0.0.1:{port}",
    )
    with pytest.raises(Unavailable):
        FreezerClient(transport, project_id="proj-a", user_id="alice").backups.list()
