"""Run inside a freezer-api 19.0.0 venv: freezer-api's own verdict on each document.

stdin: a JSON list of [kind, document]; stdout: a JSON list of true (accepted) / false.  The
calls are those freezer-api's v2 resources make before touching the database.
"""

import json
import sys

from freezer_api.api.v2.jobs import Job
from freezer_api.common import elasticv2_utils as docs

PROJECT, USER = "proj-a", "alice"


def verdict(kind, doc):
    if kind in ("job", "job_patch"):
        # The jobs resource first expands action_defaults, then stores every inline action
        # (validating it as an action), and only then validates the job itself.
        job = Job(doc)
        for action in job.actions():
            if not action.action_id:
                docs.ActionDoc.create(action.doc, USER, PROJECT)
        if kind == "job":
            docs.JobDoc.create(job.doc, PROJECT, USER)
        else:
            docs.JobDoc.create_patch(job.doc)
    elif kind == "action":
        docs.ActionDoc.create(doc, USER, PROJECT)
    elif kind == "action_patch":
        docs.ActionDoc.create_patch(doc)
    elif kind == "session":
        docs.SessionDoc.create(doc, USER, PROJECT)
    elif kind == "session_patch":
        docs.SessionDoc.create_patch(doc)
    elif kind == "client":
        docs.ClientDoc.create(doc, PROJECT, USER)
    elif kind == "backup":
        if not docs.BackupMetadataDoc(PROJECT, USER, doc).is_valid():
            raise ValueError("Bad Data Format")
    elif kind == "backup_patch":
        docs.BackupMetadataDoc.create_patch(doc)
    else:
        raise SystemExit(f"unknown kind {kind}")


def accepted(kind, doc):
    try:
        verdict(kind, doc)
    except SystemExit:
        raise
    except Exception:
        return False
    return True


print(json.dumps([accepted(kind, doc) for kind, doc in json.load(sys.stdin)]))
