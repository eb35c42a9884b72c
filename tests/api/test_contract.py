"""One contract, both transports: the same tests drive FreezerClient over the embedded
transport (real sqlite) and over the remote transport against a real freezer-api 19.0.0.

The remote half is skipped, saying why, when freezer-api cannot be installed (see conftest).
"""

import uuid

import pytest
from freezerclient.v2.client import Client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Forbidden, NotFound, ValidationError
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.api.transports.remote import RemoteTransport
from tests.api.conftest import HOST, backup_action, job_doc

# The embedded half needs the test database; the remote half does not touch it.
pytestmark = pytest.mark.django_db


@pytest.fixture(params=["embedded", "remote"])
def make_client(request):
    """make_client(project, user, roles) -> FreezerClient on the transport under test."""
    if request.param == "embedded":
        transport = EmbeddedTransport()

        def make(project, user, roles=("member",)):
            return FreezerClient(transport, project_id=project, user_id=user, roles=roles)

    else:
        url = request.getfixturevalue("freezer_api_url")

        def make(project, user, roles=("member",)):
            token = f"{project}:{user}:{','.join(roles)}"
            session = ks_session.Session(auth=token_endpoint.Token(url, token))
            freezer = Client(session=session, endpoint=url, project_id=project)
            transport = RemoteTransport(project_id=project, freezer=freezer, endpoint=url)
            return FreezerClient(transport, project_id=project, user_id=user, roles=roles)

    return make


@pytest.fixture
def projects():
    # The remote server lives for the whole session: fresh project IDs keep tests apart.
    tag = uuid.uuid4().hex[:8]
    return f"a-{tag}", f"b-{tag}", f"admin-{tag}"


@pytest.fixture
def alice(make_client, projects):
    client = make_client(projects[0], "alice")
    client.clients.create({"client_id": HOST, "hostname": HOST})
    return client


@pytest.fixture
def bob(make_client, projects):
    client = make_client(projects[1], "bob")
    client.clients.create({"client_id": HOST, "hostname": HOST})
    return client


def ids(docs, key="job_id"):
    return [doc[key] for doc in docs]


def test_job_round_trip(alice, projects):
    job_id = alice.jobs.create(job_doc())
    job = alice.jobs.get(job_id)
    assert (job["job_id"], job["project_id"], job["client_id"]) == (job_id, projects[0], HOST)
    assert job["job_schedule"]["schedule_interval"] == "6 hours"
    assert job["job_actions"][0]["freezer_action"]["backup_name"] == "etc"
    assert ids(alice.jobs.list()) == [job_id]

    # freezer-api 19.0.0 wipes the schedule on a PATCH without one; the transport must not.
    alice.jobs.update(job_id, {"description": "renamed"})
    job = alice.jobs.get(job_id)
    assert job["description"] == "renamed"
    assert job["job_schedule"]["schedule_interval"] == "6 hours"

    home = backup_action(backup_name="home", path_to_backup="/home")
    alice.jobs.update(job_id, {"job_actions": [{"freezer_action": home}]})
    assert alice.jobs.get(job_id)["job_actions"][0]["freezer_action"]["backup_name"] == "home"

    alice.jobs.delete(job_id)
    with pytest.raises(NotFound):
        alice.jobs.get(job_id)
    assert list(alice.jobs.list()) == []


def test_job_can_reference_a_stored_action(alice):
    action_id = alice.actions.create({"freezer_action": backup_action(backup_name="db")})
    assert alice.actions.get(action_id)["freezer_action"]["backup_name"] == "db"
    job_id = alice.jobs.create(job_doc(job_actions=[{"action_id": action_id}]))
    [action] = alice.jobs.get(job_id)["job_actions"]
    assert (action["action_id"], action["freezer_action"]["backup_name"]) == (action_id, "db")


def test_pages_and_text_search(alice):
    created = [
        alice.jobs.create(
            job_doc(job_actions=[{"freezer_action": backup_action(backup_name=f"name{i}")}])
        )
        for i in range(5)
    ]
    first, second, third = (alice.jobs.list(limit=2, offset=o) for o in (0, 2, 4))
    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)
    seen = ids(first) + ids(second) + ids(third)
    assert sorted(seen) == sorted(created) and len(set(seen)) == 5
    assert ids(alice.jobs.list(search="NAME3")) == [created[3]]
    assert list(alice.jobs.list(search="no such text")) == []


def test_another_project_cannot_reach_a_job(alice, bob):
    job_id = alice.jobs.create(job_doc())
    assert list(bob.jobs.list()) == []
    for attempt in (
        lambda: bob.jobs.get(job_id),
        lambda: bob.jobs.update(job_id, {"description": "mine"}),
        lambda: bob.jobs.delete(job_id),
        lambda: bob.jobs.start(job_id),
    ):
        with pytest.raises(NotFound):
            attempt()
    job = alice.jobs.get(job_id)
    assert job["description"] == "nightly /etc" and job["job_schedule"].get("event") is None


def test_admin_sees_all_projects_only_when_asking(alice, make_client, projects):
    job_id = alice.jobs.create(job_doc())
    admin = make_client(projects[2], "root", roles=("admin", "member"))
    assert job_id not in ids(admin.jobs.list(limit=100))
    everything = []
    offset = 0
    while True:
        page = admin.jobs.list(limit=50, offset=offset, all_projects=True)
        everything += ids(page)
        if not page.has_more:
            break
        offset += 50
    assert job_id in everything
    with pytest.raises(Forbidden):
        alice.jobs.list(all_projects=True)


@pytest.mark.parametrize(
    "doc,path",
    [
        (job_doc(job_schedule={"schedule_interval": "6 monthz"}), "job_schedule.schedule_interval"),
        (job_doc(job_schedule={"schedule_start_date": "2026-01-01T10:00"}), None),
        (job_doc(job_actions=[{"freezer_action": backup_action(mode="tape")}]), None),
        (job_doc(client_id="unregistered"), None),
        (job_doc(job_actions=[{"freezer_action": backup_action(storage="floppy")}]), None),
    ],
)
def test_bad_jobs_are_refused_and_nothing_is_saved(alice, doc, path):
    with pytest.raises(ValidationError) as err:
        alice.jobs.create(doc)
    if path:
        assert path in err.value.errors
    assert list(alice.jobs.list()) == []


def test_job_events(alice):
    job_id = alice.jobs.create(job_doc(job_schedule={"status": "completed", "result": "fail"}))
    assert alice.jobs.start(job_id) == "success"
    schedule = alice.jobs.get(job_id)["job_schedule"]
    assert (schedule["event"], schedule["status"], schedule["result"]) == ("start", "", "")
    assert alice.jobs.start(job_id) == "start already requested"
    assert alice.jobs.stop(job_id) == "success"
    assert alice.jobs.get(job_id)["job_schedule"]["event"] == "stop"
    assert alice.jobs.abort(job_id) == "success"
    assert alice.jobs.get(job_id)["job_schedule"]["event"] == "abort"


def test_sessions(alice):
    session_id = alice.sessions.create(
        {"description": "s", "schedule": {"schedule_interval": "1 days"}}
    )
    session = alice.sessions.get(session_id)
    assert (session["description"], session["session_tag"]) == ("s", 0)
    job_id = alice.jobs.create(job_doc())
    alice.sessions.add_job(session_id, job_id)
    job = alice.jobs.get(job_id)
    assert job["session_id"] == session_id
    assert job["job_schedule"]["schedule_interval"] == "1 days"
    assert job_id in alice.sessions.get(session_id)["jobs"]
    answer = alice.sessions.start(session_id, job_id, 0)
    assert (answer["result"], answer["session_tag"]) == ("success", 1)
    alice.sessions.remove_job(session_id, job_id)
    assert job_id not in alice.sessions.get(session_id)["jobs"]
    assert alice.jobs.get(job_id)["job_schedule"] == {"event": "stop"}
    alice.sessions.delete(session_id)
    with pytest.raises(NotFound):
        alice.sessions.get(session_id)


def test_backups_and_clients(alice, bob):
    meta = {"backup_name": "etc", "container": "/srv", "hostname": HOST, "time_stamp": 1700000000}
    backup_id = alice.backups.create(meta)
    record = alice.backups.get(backup_id)
    assert record["status"] == "available"
    assert record["backup_metadata"]["time_stamp"] == 1700000000
    assert ids(alice.backups.list(), "backup_id") == [backup_id]
    with pytest.raises(NotFound):
        bob.backups.get(backup_id)
    with pytest.raises(ValidationError):
        alice.backups.create({"backup_name": "etc"})  # available, but stored nowhere
    alice.backups.delete(backup_id)
    with pytest.raises(NotFound):
        alice.backups.get(backup_id)

    assert [c["client"]["client_id"] for c in alice.clients.list()] == [HOST]
    assert alice.clients.get(HOST)["client"]["hostname"] == HOST
    alice.clients.delete(HOST)
    with pytest.raises(NotFound):
        alice.clients.get(HOST)
    assert bob.clients.get(HOST)["client"]["client_id"] == HOST


def test_job_update_if_sets_the_schedule_only_while_the_expectation_holds(alice, bob):
    job_id = alice.jobs.create(job_doc())
    new = alice.jobs.update_if(job_id, {"status": "", "event": None}, {"status": "running"})
    assert new["status"] == "running" and new["schedule_interval"] == "6 hours"
    stored = alice.jobs.get(job_id)["job_schedule"]
    assert stored["status"] == "running" and stored["schedule_interval"] == "6 hours"
    # The state moved on: the same expectation no longer holds and nothing is written.
    assert alice.jobs.update_if(job_id, {"status": ""}, {"status": "stop"}) is None
    assert alice.jobs.get(job_id)["job_schedule"]["status"] == "running"
    with pytest.raises(ValidationError):
        alice.jobs.update_if(job_id, {"status": "running"}, {"status": "exploded"})
    assert alice.jobs.get(job_id)["job_schedule"]["status"] == "running"
    with pytest.raises(NotFound):
        bob.jobs.update_if(job_id, {}, {"status": "stop"})
    with pytest.raises(NotFound):
        alice.jobs.update_if("no-such-job", {}, {"status": "stop"})
