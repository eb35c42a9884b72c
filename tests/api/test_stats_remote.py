"""freezer_ui.api.stats in remote mode, against a real freezer-api 19.0.0 (see conftest).

The factory ``freezer.freezerclient`` is pointed at that server (Keystone is replaced by the
conftest's identity filter), so every number below went through python-freezerclient and
freezer-api's own paging.
"""

import time
import uuid

import pytest
from freezerclient.v2.client import Client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import stats
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Forbidden, FreezerAPIError
from freezer_ui.api.transports.remote import RemoteTransport
from tests.api.conftest import HOST, job_doc
from tests.api.test_freezer import make_request

DAY = stats.DAY


@pytest.fixture
def remote(freezer_api_url, monkeypatch):
    """Requests of fresh projects, served by the real freezer-api."""

    def client_for(request):
        user = request.user
        roles = [role["name"] for role in user.roles]
        token = f"{user.project_id}:{user.id}:{','.join(roles)}"
        session = ks_session.Session(auth=token_endpoint.Token(freezer_api_url, token))
        freezer = Client(session=session, endpoint=freezer_api_url, project_id=user.project_id)
        transport = RemoteTransport(
            project_id=user.project_id, freezer=freezer, endpoint=freezer_api_url
        )
        return FreezerClient(transport, project_id=user.project_id, user_id=user.id, roles=roles)

    monkeypatch.setattr(api_freezer, "freezerclient", client_for)
    tag = uuid.uuid4().hex[:8]
    return make_request(project=f"a-{tag}"), make_request(project=f"b-{tag}")


def add_backup(request, stamp, status="available", **meta):
    return api_freezer.freezerclient(request).backups.create(
        {
            "backup_name": "etc",
            "hostname": HOST,
            "container": "/srv/backups",
            "time_stamp": stamp,
            "status": status,
            **meta,
        }
    )


def test_usage_and_failures_by_paging_the_real_api(remote, monkeypatch):
    member, other = remote
    now = int(time.time())
    today = now // DAY * DAY
    add_backup(member, today - 40 * DAY, size=5000, stored_bytes=700, new_bytes=5000)
    add_backup(member, today - 2 * DAY + 5, size=2000, stored_bytes=100, new_bytes=500)
    add_backup(member, today + 1, size=2000, stored_bytes=50, new_bytes=0)
    add_backup(member, now - 60, status="error", error="disk full")
    add_backup(other, now - 60, size=10**9, stored_bytes=10**9, new_bytes=10**9)
    # Several pages of freezer-api's paging: the sums must still be whole.
    monkeypatch.setattr(stats, "PAGE", 2)
    usage = stats.project_usage(member, days=7, now=now)
    assert (usage["empty"], usage["complete"]) == (False, True)
    series = usage["series"]
    assert series[-1]["stored_bytes"] == 700 + 100 + 50
    assert series[-3]["stored_bytes"] == 700 + 100
    assert (series[-3]["new_bytes"], series[-3]["dedup_ratio"]) == (500, 0.75)
    assert (series[-1]["success"], series[-1]["fail"]) == (1, 1)
    # freezer-api keeps no run history: no run counts, rather than zeros.
    assert series[-1]["runs_success"] is None
    (failure,) = stats.recent_failures(member, days=7, now=now)
    assert (failure["error"], failure["project_id"]) == ("disk full", member.user.project_id)


def test_runs_from_the_job_documents(remote):
    member, _other = remote
    api_freezer.client_create(member, {"client_id": HOST, "hostname": HOST})
    job_id = api_freezer.job_create(member, job_doc(description="nightly"))
    now = int(time.time())
    schedule = {"schedule_interval": "6 hours", "status": "completed", "result": "success"}
    schedule.update(time_started=now - 300, time_ended=now - 100)
    api_freezer.job_update(member, job_id, {"job_schedule": schedule})
    (run,) = stats.recent_runs(member, limit=5)
    assert (run["job_id"], run["job"], run["status"], run["duration"]) == (
        job_id,
        "nightly",
        "success",
        200,
    )


def test_totals_need_admin_and_freezer_api_lists_backups_per_project(remote):
    member, _other = remote
    with pytest.raises(Forbidden):
        stats.project_totals(member)
    admin = make_request(project=member.user.project_id, roles=("admin", "member"))
    # What the admin page then shows as its error message (docs/overview.md).
    with pytest.raises(FreezerAPIError) as refused:
        stats.project_totals(admin)
    assert refused.value.status_code == 501
