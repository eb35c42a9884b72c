"""Fixtures for the API layer: real FreezerClients over the embedded transport (real sqlite)."""

import copy

import pytest

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.transports.embedded import EmbeddedTransport

HOST = "host1"


def backup_action(**overrides):
    action = {
        "action": "backup",
        "mode": "fs",
        "backup_name": "etc",
        "path_to_backup": "/etc",
        "container": "/srv/backups",
        "storage": "local",
        "engine_name": "tar",
    }
    action.update(overrides)
    return action


def job_doc(client_id=HOST, **overrides):
    doc = {
        "description": "nightly /etc",
        "client_id": client_id,
        "job_schedule": {"schedule_interval": "6 hours"},
        "job_actions": [{"freezer_action": backup_action(), "max_retries": 3}],
    }
    doc.update(overrides)
    return copy.deepcopy(doc)


@pytest.fixture
def transport(db):
    return EmbeddedTransport()


def _client(transport, project, user, roles=("member",)):
    client = FreezerClient(transport, project_id=project, user_id=user, roles=roles)
    return client


@pytest.fixture
def alice(transport):
    """A member of project A with a registered agent host."""
    client = _client(transport, "proj-a", "alice")
    client.clients.create({"client_id": HOST, "hostname": HOST})
    return client


@pytest.fixture
def bob(transport):
    """A member of project B with its own agent host of the same name."""
    client = _client(transport, "proj-b", "bob")
    client.clients.create({"client_id": HOST, "hostname": HOST})
    return client


@pytest.fixture
def admin(transport):
    return _client(transport, "proj-admin", "root", roles=("admin", "member"))
