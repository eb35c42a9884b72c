"""Jobs on remote storages: only those the operator enabled, confined to the job's project.

The agent connects with the operator's key or credentials, so a job may name only a relative
container under the base URL the operator gave (``--remote-storage NAME=URL``) plus the project
id; a job that names a URL of its own is refused.  End to end against a real sshd.
"""

import pytest

from freezer_ui.agent.actions import repository_url
from freezer_ui.agent.agent import AgentConfig, Refused
from freezer_ui.agent.cli import _remote_storages
from freezer_ui.repository import Repository
from freezer_ui.storage import get_storage
from tests.agent.conftest import backup_job, make_tree, runs_of, schedule_of
from tests.storage.sshd import missing_reason, shared_server


def _config(**kw):
    return AgentConfig(state_dir="/nonexistent", client_id="h", hostname="h", **kw)


SSH_BASE = "ssh://backup@nas:22/srv/fzui?key=/etc/k&known_hosts=/etc/kh"


def test_a_relative_container_lands_under_the_base_and_the_project():
    cfg = _config(remote_storages=(("ssh", SSH_BASE), ("swift", "swift://fzui")), project_id="p1")
    assert repository_url({"storage": "ssh", "container": "team/web"}, cfg) == (
        "ssh://backup@nas:22/srv/fzui/p1/team/web?key=/etc/k&known_hosts=/etc/kh"
    )
    assert repository_url({"storage": "swift", "container": "db"}, cfg) == "swift://fzui/p1/db"


@pytest.mark.parametrize(
    "container",
    [
        "../p2/db",
        "a/../../x",
        "/abs",
        "a//b",
        ".hidden",
        "swift://other",
        "ssh://evil/x",
        # the storages unquote their URL's path: %2e%2e would climb out after that
        "a/%2e%2e/%2e%2e/p2/web",
        # a query or fragment would replace the operator's key / known_hosts
        "a?key=/tmp/k&known_hosts=/tmp/kh&x=",
        "a#frag",
        "a\\..\\b",
        "tab\tname",
    ],
)
def test_a_container_cannot_leave_its_project(container):
    cfg = _config(remote_storages=(("swift", "swift://fzui"),), project_id="p1")
    with pytest.raises(Refused, match="relative name"):
        repository_url({"storage": "swift", "container": container}, cfg)


def test_storages_the_operator_did_not_enable_are_refused():
    cfg = _config(remote_storages=(("ssh", SSH_BASE),), project_id="p1")
    with pytest.raises(Refused, match="'swift' is not enabled on this agent"):
        repository_url({"storage": "swift", "container": "db"}, cfg)
    # nor through a URL in a local job's container
    for url in ("ssh://backup@nas/srv/other", "swift://other"):
        with pytest.raises(Refused, match="a local repository is a host path"):
            repository_url({"storage": "local", "container": url}, cfg)
    assert repository_url({"storage": "local", "container": "/srv/r"}, cfg) == "/srv/r"


def test_the_cli_option_is_checked_at_start():
    assert _remote_storages(["swift=swift://c"]) == (("swift", "swift://c"),)
    for bad in ["swift", "swift=ssh://x", "local=local:///x", "nope=nope://x"]:
        with pytest.raises(SystemExit):
            _remote_storages([bad])


def test_the_agent_advertises_only_enabled_storages(make_agent):
    assert make_agent().storages() == ["local"]
    agent = make_agent("a2", remote_storages=(("ssh", SSH_BASE),))
    assert agent.storages() == ["local", "ssh"]
    assert agent.registration()["supported_storages"] == ["local", "ssh"]


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_a_backup_job_on_ssh_storage_end_to_end(api, make_agent, tmp_path):
    server = shared_server()
    root = tmp_path / "sftp-root"
    root.mkdir()
    agent = make_agent(
        remote_storages=(("ssh", server.url(root)),), project_id="proj1", allowed_roots=("/",)
    )
    src = make_tree(tmp_path / "src", files=6)
    job = backup_job(src, "unused", storage="ssh", container="team/web")
    job_id = api.jobs.create(job)
    assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success", runs_of(api, job_id)[0]["log"]
    # the repository is on the sshd, inside the project's directory of the operator's base
    assert (root / "proj1" / "team" / "web" / "config").is_file()
    repo = Repository.open(get_storage(server.url(root / "proj1" / "team" / "web")))
    (gen,) = repo.generations()
    assert gen.labels.get("project_id") in (None, "proj1")
    # a job that tries another project's directory is refused before connecting
    job_id = api.jobs.create(backup_job(src, "unused", storage="ssh", container="../proj2/web"))
    agent.poll()
    assert schedule_of(api, job_id)["result"] == "fail"
    assert any("relative name" in line for line in runs_of(api, job_id)[0]["log"])
    assert not (root / "proj2").exists()


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_a_cli_started_agent_files_repositories_under_its_tokens_project(api, make_agent, tmp_path):
    # Started from the CLI, a single-project agent has no project_id in its config: it
    # learns the project from its Keystone token. Its repositories must still land under
    # URL/<project id>/, as documented, not at URL/<container>.
    server = shared_server()
    root = tmp_path / "sftp-root"
    root.mkdir()
    agent = make_agent(remote_storages=(("ssh", server.url(root)),), allowed_roots=("/",))
    assert agent.config.project_id == ""
    assert agent.project_id
    src = make_tree(tmp_path / "src", files=3)
    job_id = api.jobs.create(backup_job(src, "unused", storage="ssh", container="web"))
    assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success", runs_of(api, job_id)[0]["log"]
    assert (root / agent.project_id / "web" / "config").is_file()
    assert not (root / "web").exists()
