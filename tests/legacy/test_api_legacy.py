"""Legacy backups in the product: records (api/legacy.py), the wizard source
(api/legacy_source.py), and the action it writes run by the agent (agent/legacy_action.py)."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from freezer_ui.agent import legacy_action
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.exceptions import ValidationError
from freezer_ui.api.legacy import legacy_register
from freezer_ui.api.legacy_source import LegacySource
from freezer_ui.api.restore_sources import FreezerUISource, RestoreSourceError
from tests.agent.conftest import agent_db, api, make_agent  # noqa: F401 - fixtures

from .helpers import FIXTURES, expected, snapshot
from .test_agent_action import _ctx

pytestmark = pytest.mark.django_db(transaction=True)

SCENARIOS = ("tar-gzip-maxlevel", "rsyncv2-gzip-inc")


def make_request(project: str = "proj-a") -> SimpleNamespace:
    user = SimpleNamespace(
        id="alice", project_id=project, roles=[{"name": "member"}],
        token=SimpleNamespace(id="t"), endpoint="http://127.0.0.1:1/v3",
        service_catalog=[], services_region="RegionOne",
    )  # fmt: skip
    return SimpleNamespace(user=user)


@pytest.fixture
def world(tmp_path, settings, agent_db):  # noqa: F811
    """One container holding a tar and an rsyncv2 backup, inside the allowed roots."""
    root = tmp_path / "allowed"
    container = root / "freezer"
    for s in SCENARIOS:
        shutil.copytree(FIXTURES / s, container, dirs_exist_ok=True)
    settings.FREEZER_UI_ALLOWED_ROOTS = [str(root)]
    return SimpleNamespace(root=root, container=container)


def _records(request) -> list:
    out, offset = [], 0
    while True:
        page, more = api_freezer.backup_list(request, limit=100, offset=offset)
        out += page
        offset += len(page)
        if not more:
            return out


def test_register_creates_one_record_per_generation_idempotently(world):
    req = make_request()
    res = legacy_register(req, str(world.container))
    total = sum(len(expected(s)["generations"]) for s in SCENARIOS)
    assert len(res.created) == total and res.existing == 0
    assert sorted(res.backups) == ["rsync/legacyhost_rs", "tar/legacyhost_fs"]
    records = _records(req)
    assert len(records) == total
    doc = expected("tar-gzip-maxlevel")
    by_ts = {r.time_stamp: r for r in records}
    for g in doc["generations"]:
        r = by_ts[g["timestamp"]]
        meta = r.to_dict()["backup_metadata"]
        assert (r.backup_name, r.hostname, r.container, r.storage) == (
            "fs", "legacyhost", str(world.container), "local"
        )  # fmt: skip
        assert r.status == "available" and meta["freezer_legacy"] is True
        assert meta["curr_backup_level"] == g["level"] == r.level
        assert meta["engine_name"] == "tar" and meta["compression"] == "gzip"
        assert meta["encrypted"] is False
    again = legacy_register(req, str(world.container))
    assert again.created == [] and again.existing == total
    assert len(_records(req)) == total
    # another project sees none of them, and registers its own
    other = make_request("proj-b")
    assert _records(other) == []
    assert len(legacy_register(other, str(world.container)).created) == total


@pytest.mark.parametrize("where", ["/etc", "../outside", "symlink"])
def test_register_refuses_containers_outside_the_allowed_roots(world, tmp_path, where):
    if where == "symlink":
        (world.root / "link").symlink_to(tmp_path)
        path = str(world.root / "link")
    else:
        path = where if where.startswith("/") else str(world.root / where)
    with pytest.raises(ValidationError, match="inside"):
        legacy_register(make_request(), path)
    assert _records(make_request()) == []


def test_source_handles_legacy_records_only(world):
    req = make_request()
    legacy_register(req, str(world.container))
    rec = _records(req)[0]
    assert LegacySource().handles(rec) and not FreezerUISource().handles(rec)
    ours = SimpleNamespace(
        to_dict=lambda: {"backup_metadata": {"freezer_ui_agent": True, "generation_id": "g"}}
    )
    assert not LegacySource().handles(ours)
    upstream = SimpleNamespace(
        to_dict=lambda: {"backup_metadata": {"backup_name": "x", "time_stamp": 1700000000}}
    )
    assert LegacySource().handles(upstream)  # written by the upstream agent (remote mode)


def test_source_generations_resolve_and_action(world):
    req = make_request()
    legacy_register(req, str(world.container))
    doc = expected("tar-gzip-maxlevel")
    rec = next(r for r in _records(req) if r.backup_name == "fs")
    src = LegacySource()
    gens = src.generations(req, rec)
    assert [g.id for g in gens] == [str(g["timestamp"]) for g in reversed(doc["generations"])]
    assert [g.level for g in gens] == [g["level"] for g in reversed(doc["generations"])]
    assert gens[-1].kind == "full" and "incremental" in gens[0].kind
    g2 = doc["generations"][2]
    at = datetime.datetime.fromtimestamp(doc["generations"][3]["timestamp"] - 1, datetime.UTC)
    picked = src.resolve(req, rec, at)
    assert picked.id == str(g2["timestamp"])
    action = src.restore_action(req, rec, picked, ["documents"], "/srv/out", "never")
    assert action["freezer_ui_format"] == "freezer-legacy"
    assert action["legacy_timestamp"] == g2["timestamp"] and action["paths"] == ["documents"]
    assert action["container"] == str(world.container) and action["engine_name"] == "tar"
    with pytest.raises(RestoreSourceError) as ei:
        src.restore_action(req, rec, picked, [], "/srv/out", "always")
    assert ei.value.field == "overwrite"
    with pytest.raises(RestoreSourceError) as ei:
        src.resolve(req, rec, datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC))
    assert ei.value.field == "point_in_time"


def test_wizard_action_restored_by_the_agent(world, api, make_agent):  # noqa: F811
    """Register → pick a generation in the source → its action → the agent's legacy_action."""
    req = make_request()
    legacy_register(req, str(world.container))
    agent = make_agent(allowed_roots=(str(world.root),))
    for scenario, name in (("tar-gzip-maxlevel", "fs"), ("rsyncv2-gzip-inc", "rs")):
        doc = expected(scenario)
        rec = next(r for r in _records(req) if r.backup_name == name)
        src = LegacySource()
        for gen, want in zip(reversed(src.generations(req, rec)), doc["generations"], strict=True):
            target = world.root / "out" / f"{scenario}-{gen.id}"
            action = src.restore_action(req, rec, gen, [], str(target), "never")
            out = legacy_action.restore(_ctx(api, agent, action))
            assert snapshot(Path(target)) == want["tree"], (scenario, gen.id)
            assert out["generations"][-1]["timestamp"] == int(gen.id)


def test_registry_picks_the_legacy_source(world):
    from freezer_ui.api.restore_sources import source_for

    req = make_request()
    legacy_register(req, str(world.container))
    for rec in _records(req):
        assert isinstance(source_for(rec), LegacySource)


def test_wizard_job_through_the_agent_core(world, api, make_agent):  # noqa: F811
    """The job the wizard creates, run by agent.poll(): needs the agent core's dispatch of
    ``freezer_ui_format: freezer-legacy`` actions to this plugin (owned by the agent core)."""
    import inspect

    from freezer_ui.agent import actions
    from freezer_ui.agent import agent as agent_mod
    from tests.agent.conftest import HOST

    if not any("legacy_action" in inspect.getsource(m) for m in (actions, agent_mod)):
        pytest.skip("the agent core does not dispatch freezer-legacy actions yet")
    req = make_request()
    legacy_register(req, str(world.container))
    agent = make_agent(allowed_roots=(str(world.root),))
    rec = next(r for r in _records(req) if r.backup_name == "fs")
    src = LegacySource()
    gen = src.generations(req, rec)[0]
    target = world.root / "via-agent"
    action = src.restore_action(req, rec, gen, ["documents"], str(target), "never")
    job_id = api_freezer.job_create(
        req, {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": action}]}
    )
    assert agent.poll() == [job_id]
    (run,) = api_freezer.job_run_list(req, job_id)[0]
    outcome = run.to_dict()["actions"][0]
    assert outcome["result"] == "success", outcome
    want = expected("tar-gzip-maxlevel")["generations"][-1]["tree"]
    got = snapshot(target)
    assert got == {k: v for k, v in want.items() if k == "documents" or k.startswith("documents/")}


def test_import_job_through_the_agent_core_then_restore_as_ours(world, api, make_agent):  # noqa: F811
    """admin + legacy_import run by agent.poll(); the imported generations show as backup
    records of ours (FreezerUISource), and our own restore action gives each legacy state."""
    from freezer_ui.api.restore_sources import source_for
    from tests.agent.conftest import HOST

    req = make_request()
    agent = make_agent(allowed_roots=(str(world.root),))
    doc = expected("tar-gzip-maxlevel")
    action = {
        "action": "admin",
        "legacy_import": True,
        "storage": "local",
        "container": str(world.container),
        "backup_name": doc["backup_name"],
        "hostname": doc["hostname"],
        "repository": str(world.root / "repo"),
    }
    job_id = api_freezer.job_create(
        req, {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": action}]}
    )
    assert agent.poll() == [job_id]
    (run,) = api_freezer.job_run_list(req, job_id)[0]
    outcome = run.to_dict()["actions"][0]
    assert outcome["result"] == "success", outcome
    ours = [r for r in _records(req) if r.generation_id]
    assert len(ours) == len(doc["generations"])
    src = source_for(ours[0])
    assert isinstance(src, FreezerUISource)
    gens = src.generations(req, ours[0])
    by_time = {int(g.time.timestamp()): g for g in gens}
    assert sorted(by_time) == sorted(g["timestamp"] for g in doc["generations"])
    for want in doc["generations"]:
        gen = by_time[want["timestamp"]]
        target = world.root / "restored" / gen.id
        act = src.restore_action(req, ours[0], gen, [], str(target), "never")
        job = api_freezer.job_create(
            req, {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": act}]}
        )
        assert agent.poll() == [job]
        assert snapshot(target) == want["tree"], gen.id


def test_rsync_v1_backup_through_the_wizard_source_and_the_agent(
    tmp_path,
    settings,
    api,  # noqa: F811
    make_agent,  # noqa: F811
):
    """rsync v1 is handled like rsyncv2 in the product: registered records (engine "rsync"),
    LegacySource generations and actions, every generation restored by the agent's action."""
    root = tmp_path / "allowed"
    shutil.copytree(FIXTURES / "rsync-gzip-inc", root / "freezer")
    settings.FREEZER_UI_ALLOWED_ROOTS = [str(root)]
    req = make_request()
    legacy_register(req, str(root / "freezer"))
    doc = expected("rsync-gzip-inc")
    records = _records(req)
    assert {r.engine_name for r in records} == {"rsync"}
    assert len(records) == len(doc["generations"])
    agent = make_agent(allowed_roots=(str(root),))
    src = LegacySource()
    gens = src.generations(req, records[0])
    for gen, want in zip(reversed(gens), doc["generations"], strict=True):
        target = root / "out" / gen.id
        action = src.restore_action(req, records[0], gen, [], str(target), "never")
        assert action["engine_name"] == "rsync"
        out = legacy_action.restore(_ctx(api, agent, action))
        assert snapshot(target) == want["tree"], gen.id
        assert [g["level"] for g in out["generations"]][-1] == want["level"]
