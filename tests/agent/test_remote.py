"""Remote mode: the agent runs a job of a real freezer-api 19.0.0 through python-freezerclient."""

import pytest
from freezerclient.v2.client import Client
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from freezer_ui.agent.agent import Agent, AgentConfig
from freezer_ui.agent.state import read_runs
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Unavailable
from freezer_ui.api.transports.remote import RemoteTransport
from freezer_ui.repository import Repository
from freezer_ui.storage import get_storage
from tests.agent.conftest import HOST, backup_job, make_tree

pytestmark = pytest.mark.slow


def remote_client(url, project, user):
    # The test freezer-api reads the identity from the token (tests/api/_fapi_identity.py).
    token = f"{project}:{user}:member"
    session = ks_session.Session(auth=token_endpoint.Token(url, token))
    freezer = Client(session=session, endpoint=url, project_id=project)
    transport = RemoteTransport(project_id=project, freezer=freezer, endpoint=url)
    return FreezerClient(transport, project_id=project, user_id=user, roles=["member"])


def test_agent_runs_a_freezer_api_job_and_its_backup_appears(freezer_api_url, tmp_path):
    project = "proj-agent-remote"
    config = AgentConfig(
        state_dir=str(tmp_path / "state"), client_id=HOST, hostname=HOST, progress_interval=0.05
    )
    agent = Agent(remote_client(freezer_api_url, project, "agent"), config)
    agent.start()  # registers the client in freezer-api
    user = remote_client(freezer_api_url, project, "alice")
    src, repo = make_tree(tmp_path / "src", files=5), tmp_path / "repo"
    job_id = user.jobs.create(backup_job(src, repo))

    assert agent.poll() == [job_id]
    schedule = user.jobs.get(job_id)["job_schedule"]
    assert schedule["status"] == "scheduled" and schedule["result"] == "success"
    records = [
        b
        for b in user.backups.list(limit=100)
        if (b.get("backup_metadata") or {}).get("job_id") == job_id
    ]
    (record,) = records
    assert record["status"] == "available"
    meta = record["backup_metadata"]
    (gen,) = Repository.open(get_storage(str(repo))).generations()
    assert meta["generation_id"] == gen.id
    assert meta["backup_name"] == "data" and meta["hostname"] == HOST
    assert meta["files"] >= 5 and meta["new_bytes"] > 0
    assert agent.poll() == []  # not due again
    # freezer-api has no run history: the API says so, the agent keeps it on its host.
    with pytest.raises(Unavailable, match="stores no job runs"):
        user.job_runs.list(job_id=job_id)
    (run,) = read_runs(agent.state.root, job_id)
    assert run["status"] == "success" and run["job_id"] == job_id
    assert run["actions"][0]["summary"]["generation_id"] == gen.id
