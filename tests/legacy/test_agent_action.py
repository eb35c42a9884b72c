"""The agent's job action on upstream Freezer backups (freezer_ui/agent/legacy_action.py),
with a real agent, a real job in the embedded store and the real fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from freezer_ui.agent import legacy_action
from freezer_ui.agent.actions import ActionContext
from freezer_ui.agent.agent import Cancelled, Refused, RunControl, RunLog
from freezer_ui.repository import Repository
from freezer_ui.storage.registry import get_storage
from tests.agent.conftest import HOST, agent_db, api, make_agent  # noqa: F401 - fixtures

from .helpers import FIXTURES, expected, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def _world(tmp_path: Path, scenario: str) -> tuple[Path, dict]:
    root = tmp_path / "allowed"
    container = root / "containers" / scenario
    shutil.copytree(FIXTURES / scenario, container)
    return root, expected(scenario)


def _action(container: Path, doc: dict, target: Path, **extra) -> dict:
    return {
        "action": "restore",
        "freezer_ui_format": "freezer-legacy",
        "storage": "local",
        "container": str(container),
        "backup_name": doc["backup_name"],
        "hostname": doc["hostname"],
        "restore_abs_path": str(target),
        **extra,
    }


def _ctx(api, agent, action: dict, passphrase: str | None = None) -> ActionContext:  # noqa: F811
    # The job only carries the run (abort events are read from it); the action under test is
    # handed over as the agent core would, including ones the client would not accept in a job.
    job_id = api.jobs.create(
        {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": {
            "action": "restore", "backup_name": "x", "restore_abs_path": "/tmp/x"}}]}
    )  # fmt: skip
    job = api.jobs.get(job_id)
    return ActionContext(
        agent=agent,
        job=job,
        action=action,
        control=RunControl(agent, job_id, 0.0),
        log=RunLog(job_id),
        current={"run_id": "r1"},
        started=0,
        passphrase=passphrase,
    )


def test_restore_at_a_date_with_paths(api, make_agent, tmp_path):  # noqa: F811
    root, doc = _world(tmp_path, "tar-gzip-maxlevel")
    agent = make_agent(allowed_roots=(str(root),))
    g = doc["generations"][2]
    target = root / "restored"
    action = _action(
        root / "containers" / "tar-gzip-maxlevel", doc, target,
        restore_from_date=g["timestamp"], legacy_timestamp=g["timestamp"],
    )  # fmt: skip
    ctx = _ctx(api, agent, action)
    out = legacy_action.restore(ctx)
    assert snapshot(target) == g["tree"]
    assert [x["level"] for x in out["generations"]] == [0, 1, 2]
    assert out["files"] > 0 and out["bytes"] > 0 and out["format"] == "freezer-legacy"
    assert ctx.control.last_progress is not None  # progress went through the run's control
    assert ctx.control.last_progress.snapshot().bytes_done > 0
    assert any("restored" in line for line in ctx.log.lines)

    sub = root / "sub"
    out = legacy_action.restore(
        _ctx(api, agent, _action(root / "containers" / "tar-gzip-maxlevel", doc, sub,
                                 paths=["documents/sub"]))
    )  # fmt: skip
    assert out["paths"] == ["documents/sub"]
    assert sorted(p.name for p in sub.rglob("*")) == ["c.txt", "documents", "sub"]


def test_encrypted_with_the_resolved_passphrase(api, make_agent, tmp_path):  # noqa: F811
    root, doc = _world(tmp_path, "tar-xz-enc-md5")
    agent = make_agent(allowed_roots=(str(root),))
    pw = (FIXTURES / "tar-xz-enc-md5.pass").read_text()
    action = _action(
        root / "containers" / "tar-xz-enc-md5", doc, root / "o", passphrase_ref="legacy-key"
    )
    legacy_action.restore(_ctx(api, agent, action, passphrase=pw))
    assert snapshot(root / "o") == doc["generations"][-1]["tree"]
    with pytest.raises(Refused, match="must name its key"):
        unnamed = {k: v for k, v in action.items() if k != "passphrase_ref"}
        legacy_action.restore(_ctx(api, agent, {**unnamed, "restore_abs_path": str(root / "n")}))
    # A passphrase the agent resolved without the action naming a key (its shared one) is
    # not used, even when it is the right one: only the named key decrypts.
    with pytest.raises(Refused, match="must name its key"):
        legacy_action.restore(
            _ctx(api, agent, {**unnamed, "restore_abs_path": str(root / "s")}, passphrase=pw)
        )
    with pytest.raises(Refused, match="wrong passphrase"):
        legacy_action.restore(
            _ctx(api, agent, {**action, "restore_abs_path": str(root / "w")}, passphrase="nope")
        )
    assert not any((root / n).exists() for n in ("n", "s", "w"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"restore_abs_path": "/etc/evil"}, "outside the allowed roots"),
        ({"container": "/etc"}, "outside the allowed roots"),
        ({"backup_name": "nope"}, "no backup named"),
        ({"storage": "swift"}, "local"),
        ({"engine_name": "nova"}, "cannot be restored"),
        ({"restore_from_date": "2001-01-01T00:00:00"}, "no level-0 backup"),
        ({"restore_from_date": "yesterday"}, "bad date"),
        ({"paths": ["../x"]}, "relative path"),
        ({"paths": ["no/such/file"]}, "not in the backup"),
        ({"legacy_timestamp": 12345}, "no longer exists"),
        ({"legacy_timestamp": "x"}, "no longer exists"),
    ],
)
def test_refusals(api, make_agent, tmp_path, change, message):  # noqa: F811
    root, doc = _world(tmp_path, "tar-bzip2")
    agent = make_agent(allowed_roots=(str(root),))
    action = {**_action(root / "containers" / "tar-bzip2", doc, root / "o"), **change}
    with pytest.raises(Refused, match=message):
        legacy_action.restore(_ctx(api, agent, action))
    assert not (root / "o").exists()


def test_target_not_empty_is_refused_and_untouched(api, make_agent, tmp_path):  # noqa: F811
    root, doc = _world(tmp_path, "tar-bzip2")
    agent = make_agent(allowed_roots=(str(root),))
    (root / "o").mkdir()
    (root / "o" / "mine").write_text("keep")
    with pytest.raises(Refused, match="not empty"):
        legacy_action.restore(_ctx(api, agent, _action(root / "containers" / "tar-bzip2", doc,
                                                        root / "o")))  # fmt: skip
    assert [p.name for p in (root / "o").iterdir()] == ["mine"]


def test_abort_event_stops_the_restore_and_leaves_nothing(api, make_agent, tmp_path):  # noqa: F811
    root, doc = _world(tmp_path, "rsyncv2-gzip-inc")
    agent = make_agent(allowed_roots=(str(root),))
    ctx = _ctx(api, agent, _action(root / "containers" / "rsyncv2-gzip-inc", doc, root / "o"))
    ctx.control.cancelled.set()
    with pytest.raises(Cancelled):
        legacy_action.restore(ctx)
    assert not (root / "o").exists()
    assert not [p for p in root.iterdir() if ".legacy-restore-" in p.name]


def test_import_action(api, make_agent, tmp_path):  # noqa: F811
    root, doc = _world(tmp_path, "rsyncv2-bzip2-inc")
    agent = make_agent(allowed_roots=(str(root),))
    action = {
        "action": "admin",
        "legacy_import": True,
        "storage": "local",
        "container": str(root / "containers" / "rsyncv2-bzip2-inc"),
        "backup_name": doc["backup_name"],
        "hostname": doc["hostname"],
        "repository": str(root / "repo"),
    }
    out = legacy_action.import_(_ctx(api, agent, action))
    assert len(out["imported"]) == len(doc["generations"]) and out["already_imported"] == 0
    repo = Repository.open(get_storage(str(root / "repo")))
    assert sorted(g.id for g in repo.generations()) == sorted(out["imported"])
    gens = {g.id: g for g in repo.generations()}
    assert {g.labels["project_id"] for g in gens.values()} == {str(agent.project_id)}
    # one backup record of ours per imported generation, in the legacy series, at legacy time
    records = [
        r["backup_metadata"]
        for r in api.backups.list(limit=100)
        if r["backup_metadata"].get("generation_id") in gens
    ]
    assert len(records) == len(doc["generations"])
    assert {(m["hostname"], m["backup_name"], m["container"]) for m in records} == {
        (doc["hostname"], doc["backup_name"], str(root / "repo"))
    }
    assert sorted(m["time_stamp"] for m in records) == [g["timestamp"] for g in doc["generations"]]
    out = legacy_action.import_(_ctx(api, agent, action))
    assert out["imported"] == [] and out["already_imported"] == len(doc["generations"])
    assert len(
        [r for r in api.backups.list(limit=100) if r["backup_metadata"].get("generation_id")]
    ) == len(doc["generations"])
    with pytest.raises(Refused, match="outside the allowed roots"):
        legacy_action.import_(_ctx(api, agent, {**action, "repository": str(tmp_path / "x")}))
