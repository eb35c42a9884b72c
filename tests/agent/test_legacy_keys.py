"""An encrypted upstream Freezer backup restored by a real agent (``agent.poll()``) with exactly
the key the restore action names (``passphrase_ref``, a passphrase of the project's Keys panel),
and refused — before anything is written — when the action names none, a key that does not
exist, or one holding another passphrase. The agent's shared passphrase is never a fallback.
"""

from __future__ import annotations

import shutil

import pytest

from freezer_ui import secrets
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.legacy import legacy_register
from freezer_ui.api.legacy_source import LegacySource
from tests.agent.conftest import HOST, PROJECT, runs_of, schedule_of
from tests.legacy.helpers import FIXTURES, expected, snapshot
from tests.legacy.test_api_legacy import make_request

pytestmark = pytest.mark.django_db(transaction=True)

SCENARIO = "tar-gzip-enc-sha256"


@pytest.fixture
def world(tmp_path, settings, monkeypatch, agent_db):
    monkeypatch.delenv(secrets.KEY_FILE_ENV, raising=False)
    settings.FREEZER_UI_SECRET_KEY_FILE = str(tmp_path / "secret.key")
    root = tmp_path / "allowed"
    shutil.copytree(FIXTURES / SCENARIO, root / "freezer")
    settings.FREEZER_UI_ALLOWED_ROOTS = [str(root)]
    req = make_request(PROJECT)
    legacy_register(req, str(root / "freezer"))
    (rec,) = [r for r in api_freezer.backup_list(req, limit=100, offset=0)[0] if r.level == 1]
    gen = LegacySource().generations(req, rec)[0]
    assert gen.extra["encrypted"] is True and int(gen.id) == rec.time_stamp
    return root, req, rec, gen


def _run(api, agent, req, rec, gen, target, **extra):
    action = LegacySource().restore_action(req, rec, gen, [], str(target), "never")
    action.update(extra)
    job_id = api_freezer.job_create(
        req, {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": action}]}
    )
    assert agent.poll() == [job_id]
    (run,) = runs_of(api, job_id)
    return {**run, "result": schedule_of(api, job_id)["result"]}


def _passphrase() -> str:
    return (FIXTURES / f"{SCENARIO}.pass").read_text().splitlines()[0]


def test_the_named_key_decrypts(world, api, make_agent):
    root, req, rec, gen = world
    secrets.SecretStore().create(PROJECT, "alice", "old-freezer", _passphrase())
    agent = make_agent(allowed_roots=(str(root),))
    run = _run(api, agent, req, rec, gen, root / "out", passphrase_ref="old-freezer")
    assert run["result"] == "success", run
    assert snapshot(root / "out") == expected(SCENARIO)["generations"][-1]["tree"]


def test_no_key_named_is_refused_even_with_the_right_shared_passphrase(
    world, api, make_agent, monkeypatch
):
    root, req, rec, gen = world
    # The agent's shared passphrase *is* the right one: still not used without a named key.
    monkeypatch.setenv(secrets.PASSPHRASE_ENV, _passphrase())
    agent = make_agent(allowed_roots=(str(root),))
    run = _run(api, agent, req, rec, gen, root / "out")
    assert run["result"] != "success"
    assert "must name its key" in run["reason"], run
    assert not (root / "out").exists()


@pytest.mark.parametrize(
    ("stored", "message"),
    [(None, "old-freezer"), ("not the passphrase", "does not decrypt")],
    ids=["missing-key", "wrong-key"],
)
def test_a_missing_or_wrong_key_is_refused_before_writing(world, api, make_agent, stored, message):
    root, req, rec, gen = world
    if stored is not None:
        secrets.SecretStore().create(PROJECT, "alice", "old-freezer", stored)
    agent = make_agent(allowed_roots=(str(root),))
    run = _run(api, agent, req, rec, gen, root / "out", passphrase_ref="old-freezer")
    assert run["result"] != "success"
    assert message in run["reason"], run
    assert not (root / "out").exists()
    assert [p.name for p in root.iterdir()] == ["freezer"]  # no temporary directory either
