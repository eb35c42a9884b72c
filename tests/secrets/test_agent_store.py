"""A stored passphrase reaches the repository through a real agent, and nothing else.

The agent here runs against a migrated sqlite *file* (tests/agent/conftest.py), as it does next
to a dashboard, and resolves ``passphrase_ref`` in its project
(``freezer_ui/agent/agent.py``: ``resolve_passphrase(..., project_id=self.project_id)``).
"""

import os

import pytest

from freezer_ui import conf, secrets
from freezer_ui.models import Secret
from freezer_ui.repository import Repository
from freezer_ui.storage import get_storage
from tests.agent.conftest import (
    PROJECT,
    backup_job,
    backups_of,
    make_tree,
    runs_of,
    schedule_of,
)

VALUE = "stored passphrase ✓ 42"


@pytest.fixture
def key_file(tmp_path, settings, monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV, raising=False)
    settings.FREEZER_UI_SECRET_KEY_FILE = str(tmp_path / "secret.key")
    return tmp_path / "secret.key"


@pytest.fixture
def agent_with_project(make_agent):
    agent = make_agent()
    assert agent.project_id == PROJECT
    return agent


def test_backup_encrypted_with_a_stored_passphrase(
    api, key_file, agent_with_project, tmp_path, caplog
):
    secrets.SecretStore().create(PROJECT, "alice", "repo-key", VALUE)
    src, repo = make_tree(tmp_path / "src", files=2), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo, passphrase_ref="repo-key"))
    with caplog.at_level("DEBUG"):
        assert agent_with_project.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success"
    repository = Repository.open(get_storage(str(repo)), passphrase=VALUE)
    assert repository.encrypted and len(repository.generations()) == 1
    # Nowhere else: logs, the job, its run history, its backup record, the key dir.
    assert VALUE not in caplog.text
    assert VALUE not in str(api.jobs.get(job_id))
    assert VALUE not in str(runs_of(api, job_id))
    assert VALUE not in str(backups_of(api, job_id))
    assert os.listdir(agent_with_project.key_dir) == []


def test_a_tampered_stored_passphrase_refuses_the_job(api, key_file, agent_with_project, tmp_path):
    secrets.SecretStore().create(PROJECT, "alice", "repo-key", VALUE)
    rows = Secret.objects.using(conf.database_alias()).filter(name="repo-key")
    blob = bytearray(rows.get().ciphertext)
    blob[-1] ^= 1
    rows.update(ciphertext=bytes(blob))
    src, repo = make_tree(tmp_path / "src", files=1), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo, passphrase_ref="repo-key"))
    assert agent_with_project.poll() == [job_id]
    (run,) = runs_of(api, job_id)
    assert "fails authentication" in run["reason"]
    assert VALUE not in str(run)
    assert not repo.exists()  # refused before anything was written
