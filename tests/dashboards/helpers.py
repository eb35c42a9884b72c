"""Shared test data and base classes for the panel tests.

Documents are freezer-api v2 shaped and wrapped by the real resource classes, so a test breaks
when a view relies on an attribute the resources do not have.
"""

import copy

from openstack_dashboard.test import helpers

from freezer_ui.api import resources

JOB_DOC = {
    "job_id": "job-1",
    "project_id": "1",
    "user_id": "1",
    "client_id": "host-1",
    "description": "Nightly /etc",
    "job_schedule": {
        "status": "stop",
        "event": "",
        "result": "",
        "schedule_interval": "6 hours",
        "schedule_start_date": "2030-01-01T10:00:00",
    },
    "job_actions": [
        {
            "freezer_action": {
                "action": "backup",
                "mode": "fs",
                "engine_name": "tar",
                "storage": "local",
                "path_to_backup": "/etc",
                "backup_name": "etc",
                "container": "/srv/backups",
            },
            "max_retries": 3,
            "max_retries_interval": 60,
            "mandatory": True,
        }
    ],
}

BACKUP_DOC = {
    "backup_id": "backup-1",
    "project_id": "1",
    "user_id": "1",
    "status": "available",
    "backup_metadata": {
        "backup_name": "etc",
        "hostname": "host-1",
        "engine_name": "tar",
        "storage": "local",
        "container": "/srv/backups",
        "time_stamp": 1893492000,
        "level": 0,
        "size": 2048,
        "stored_bytes": 1024,
        "new_bytes": 512,
        "files": 12,
        "generation_id": "gen-1",
    },
}

CLIENT_DOC = {
    "project_id": "1",
    "user_id": "1",
    "client": {
        "client_id": "host-1",
        "hostname": "host-1",
        "description": "web node",
        "uuid": "0f2a",
        "supported_engines": ["tar", "rsync"],
    },
}

SESSION_DOC = {
    "session_id": "session-1",
    "project_id": "1",
    "user_id": "1",
    "session_tag": 0,
    "description": "All web nodes",
    "schedule": {"schedule_interval": "1 days"},
    "jobs": {},
    "status": "active",
    "result": "",
}


def _doc(base, nested=None, **overrides):
    """A copy of ``base``; keys that live in the ``nested`` sub-document are set there."""
    doc = copy.deepcopy(base)
    for key, value in overrides.items():
        if nested and (key in doc[nested] or key.startswith("schedule_")):
            doc[nested][key] = value
        else:
            doc[key] = value
    return doc


def job(**overrides):
    return resources.Job(_doc(JOB_DOC, "job_schedule", **overrides))


def backup(**overrides):
    return resources.Backup(_doc(BACKUP_DOC, "backup_metadata", **overrides))


def client(**overrides):
    return resources.Client(_doc(CLIENT_DOC, "client", **overrides))


def session(**overrides):
    return resources.Session(_doc(SESSION_DOC, **overrides))


class TestCase(helpers.TestCase):
    """Horizon's TestCase (logged-in member of project "1"), run by pytest-django."""


class AdminTestCase(helpers.BaseAdminViewTests):
    """The same, with the admin role."""
