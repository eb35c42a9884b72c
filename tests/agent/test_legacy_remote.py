"""Upstream Freezer backups kept on ssh or Swift, restored through the agent's legacy action
(freezer_ui/agent/legacy_action.py) and the restore wizard's source, against real servers: a
real sshd, a real Swift all-in-one (tempauth, and behind a real Keystone), holding the objects
the real freezer 19.0.0 agent wrote (tests/legacy/remote_fixtures/).

The rule under test (docs/agent.md): the agent reads only storages the operator enabled —
``--remote-storage NAME=URL`` (containers under URL/<project id>/, like our repositories) or
``--legacy-storage swift`` (the project's own Swift account, with that project's own Keystone
credentials, one project per agent) — and a record's container is a plain relative name,
checked before any connection.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freezer_ui.agent import legacy_action
from freezer_ui.agent.actions import ActionContext
from freezer_ui.agent.agent import Refused, RunControl, RunLog
from freezer_ui.engines.legacy import LegacyError
from freezer_ui.storage.swift import SwiftStorage
from tests.agent.conftest import HOST
from tests.legacy.helpers import leftovers, snapshot
from tests.legacy.remote_make_fixture import OUT, SCENARIO, SWIFT_SCENARIO
from tests.storage import sshd, swiftaio

pytestmark = pytest.mark.django_db(transaction=True)

SSH_DOC = json.loads((OUT / f"{SCENARIO}.expected.json").read_text())
SWIFT_DOC = json.loads((OUT / f"{SWIFT_SCENARIO}.expected.json").read_text())
SWIFT_FIXTURE = OUT / SWIFT_SCENARIO
SWIFT_KEYS = sorted(
    p.relative_to(SWIFT_FIXTURE).as_posix() for p in SWIFT_FIXTURE.rglob("*") if p.is_file()
)
_ENV_NAMES = (
    "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_TENANT_NAME",
    "OS_PROJECT_ID", "OS_TENANT_ID", "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME",
    "OS_USER_DOMAIN_ID", "OS_PROJECT_DOMAIN_ID", "OS_REGION_NAME", "OS_INTERFACE",
    "OS_AUTH_TOKEN", "OS_STORAGE_URL", "OS_CACERT", "ST_AUTH", "ST_USER", "ST_KEY",
)  # fmt: skip

needs_sshd = pytest.mark.skipif(
    sshd.missing_reason() is not None, reason=str(sshd.missing_reason())
)
needs_swift = pytest.mark.skipif(
    swiftaio.missing_reason() is not None, reason=str(swiftaio.missing_reason())
)


def _ctx(api, agent, action: dict) -> ActionContext:
    # A real job carries the run (abort events are read from it); the action is handed over as
    # the agent core would.
    job_id = api.jobs.create(
        {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": {
            "action": "restore", "backup_name": "x", "restore_abs_path": "/tmp/x"}}]}
    )  # fmt: skip
    return ActionContext(
        agent=agent,
        job=api.jobs.get(job_id),
        action=action,
        control=RunControl(agent, job_id, 0.0),
        log=RunLog(job_id),
        current={"run_id": "r1"},
        started=0,
        passphrase=None,
    )


def _action(storage: str, container: str, doc: dict, target: Path, **extra: Any) -> dict:
    return {
        "action": "restore",
        "freezer_ui_format": "freezer-legacy",
        "engine_name": "tar",
        "storage": storage,
        "container": container,
        "backup_name": doc["backup_name"],
        "hostname": doc["hostname"],
        "restore_abs_path": str(target),
        **extra,
    }


def _spool_left(agent) -> list[str]:
    spool = Path(agent.config.state_dir) / "legacy-spool"
    return sorted(p.name for p in spool.iterdir()) if spool.exists() else []


def _restore_every_generation(api, agent, storage, container, doc, out: Path) -> None:
    for gen in doc["generations"]:
        target = out / f"g{gen['timestamp']}"
        action = _action(
            storage, container, doc, target,
            restore_from_date=gen["timestamp"], legacy_timestamp=gen["timestamp"],
        )  # fmt: skip
        res = legacy_action.restore(_ctx(api, agent, action))
        assert snapshot(target) == gen["tree"], gen["level"]
        assert [g["level"] for g in res["generations"]] == list(range(gen["level"] + 1))
        assert _spool_left(agent) == []
    assert leftovers(out) == []


def _clean_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None) -> None:
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)


# ---------------------------------------------------------------- refusals before connecting

# An ssh base nobody listens on: a refusal that names the container (not a connection error)
# proves the check ran before any connection.
DEAD_SSH = "ssh://backup@127.0.0.1:1/srv/legacy?key=/nonexistent/key&known_hosts=/nonexistent/kh"


@pytest.mark.parametrize(
    "container",
    [
        "..", "../proj-b/freezer", "a/../../x", "/srv/freezer", "a//b", ".hidden", "",
        "ssh://evil/x", "swift://other", "a/%2e%2e/%2e%2e/b", "a?key=/root/.ssh/id_rsa",
        "a#b", "a\\..\\b", "a b/\n",
    ],
)  # fmt: skip
@pytest.mark.parametrize("storage", ["ssh", "swift"])
def test_bad_container_names_are_refused_before_any_connection(
    api, make_agent, tmp_path, monkeypatch, storage, container
):
    _clean_env(monkeypatch)  # no credentials at all: a connection attempt would fail otherwise
    agent = make_agent(
        remote_storages=(("ssh", DEAD_SSH),),
        legacy_storages=("swift",),
        allowed_roots=(str(tmp_path),),
    )
    action = _action(storage, container, SSH_DOC, tmp_path / "out")
    with pytest.raises(Refused, match="relative name"):
        legacy_action.restore(_ctx(api, agent, action))
    assert not (tmp_path / "out").exists()
    assert not (Path(agent.config.state_dir) / "legacy-spool").exists()


@pytest.mark.parametrize("storage", ["ssh", "swift"])
def test_storages_the_operator_did_not_enable_are_refused(api, make_agent, tmp_path, storage):
    agent = make_agent(allowed_roots=(str(tmp_path),))
    action = _action(storage, "freezer_backups", SSH_DOC, tmp_path / "out")
    with pytest.raises(Refused, match=f"on {storage} storage cannot be read by this agent"):
        legacy_action.restore(_ctx(api, agent, action))
    # ssh enabled does not enable swift, and --legacy-storage is swift only
    agent = make_agent("a2", remote_storages=(("ssh", DEAD_SSH),), allowed_roots=(str(tmp_path),))
    if storage == "swift":
        with pytest.raises(Refused, match="enabled here: ssh"):
            legacy_action.restore(_ctx(api, agent, action))
    for other in ("s3", "cinder"):
        with pytest.raises(Refused, match="not storage"):
            legacy_action.restore(_ctx(api, agent, {**action, "storage": other}))
    # a local record cannot smuggle a URL in as its container either
    with pytest.raises(Refused, match="a local container is a host path"):
        legacy_action.restore(_ctx(api, agent, {**action, "storage": "local",
                                                "container": DEAD_SSH}))  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_the_cli_option(monkeypatch):
    from freezer_ui.agent import cli

    args = cli.build_parser().parse_args(["--legacy-storage", "swift", "--project-id", "p"])
    assert args.legacy_storage == ["swift"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--legacy-storage", "ssh"])
    with pytest.raises(SystemExit, match="one project"):
        cli.run(cli.build_parser().parse_args(
            ["--legacy-storage", "swift", "--project-id", "a", "--project-id", "b"]))  # fmt: skip


# ---------------------------------------------------------------- ssh (--remote-storage)


@pytest.fixture
def ssh_world(tmp_path) -> Any:
    """The agent's container (written by the real agent over ssh) copied by the operator under
    <base>/<project>/old/freezer on a real sshd."""
    server = sshd.shared_server()
    base = tmp_path / "sftp-base"
    shutil.copytree(OUT / SCENARIO, base / "proj-a" / "old" / "freezer")
    return server, base


@needs_sshd
def test_every_generation_from_ssh_byte_exact(api, make_agent, tmp_path, ssh_world):
    server, base = ssh_world
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    agent = make_agent(remote_storages=(("ssh", server.url(base)),), allowed_roots=(str(allowed),))
    # the single agent's config has no project id (the CLI's case): its client's is used
    assert agent.config.project_id == "" and agent.project_id == "proj-a"
    _restore_every_generation(api, agent, "ssh", "old/freezer", SSH_DOC, allowed)


@needs_sshd
def test_another_project_cannot_reach_the_first_projects_container(
    api, make_agent, tmp_path, ssh_world
):
    server, base = ssh_world
    (base / "proj-b").mkdir()
    agent_b = make_agent(
        "b", remote_storages=(("ssh", server.url(base)),), allowed_roots=(str(tmp_path),),
        project_id="proj-b",
    )  # fmt: skip
    for container in ("old/freezer", "../proj-a/old/freezer"):
        with pytest.raises((Refused, LegacyError)):
            legacy_action.restore(
                _ctx(api, agent_b, _action("ssh", container, SSH_DOC, tmp_path / "out"))
            )
    assert not (tmp_path / "out").exists() and _spool_left(agent_b) == []


@needs_sshd
def test_a_corrupt_level_over_ssh_fails_through_the_agent_core_and_writes_nothing(
    api, make_agent, tmp_path, ssh_world
):
    """Run by agent.poll() as a job: the run fails with the reader's error naming the object,
    no target, no temporary directory, and the spool is gone."""
    from tests.agent.conftest import runs_of, schedule_of

    server, base = ssh_world
    container = base / "proj-a" / "old" / "freezer"
    datas = sorted(container.rglob("data/**/data"))
    level1 = next(p for p in datas if p.parent.name.startswith("1_"))
    raw = bytearray(level1.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[i] ^= 0x5A
    level1.write_bytes(bytes(raw))
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    agent = make_agent(remote_storages=(("ssh", server.url(base)),), allowed_roots=(str(allowed),))
    target = allowed / "out"
    gen = SSH_DOC["generations"][-1]
    action = _action("ssh", "old/freezer", SSH_DOC, target, legacy_timestamp=gen["timestamp"])
    job_id = api.jobs.create(
        {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": action}]}
    )
    assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "fail"
    (run,) = runs_of(api, job_id)
    error = run["actions"][0]["error"]
    assert "1_" in error and "data" in error, error
    assert not target.exists() and leftovers(allowed) == [] and _spool_left(agent) == []
    # level 0 alone is intact and still restores
    gen0 = SSH_DOC["generations"][0]
    out0 = allowed / "out0"
    action0 = _action("ssh", "old/freezer", SSH_DOC, out0, legacy_timestamp=gen0["timestamp"])
    legacy_action.restore(_ctx(api, agent, action0))
    assert snapshot(out0) == gen0["tree"]


# ---------------------------------------------------------------- swift (--remote-storage)


@pytest.fixture
def tempauth(monkeypatch) -> swiftaio.SwiftAIO:
    """The operator's Swift credentials (tempauth) in the agent's environment."""
    try:
        aio = swiftaio.shared()
    except swiftaio.SwiftUnavailable as exc:
        pytest.skip(str(exc))
    _clean_env(monkeypatch, aio.env())
    return aio


def _upload(url: str, *, skip: str | None = None, corrupt: str | None = None) -> None:
    s = SwiftStorage.from_url(url)
    for key in SWIFT_KEYS:
        if key == skip:
            continue
        data = (SWIFT_FIXTURE / key).read_bytes()
        if key == corrupt:
            data = data[: len(data) // 2] + bytes(b ^ 0x5A for b in data[len(data) // 2 :])
        s.put(key, [data])
    s.close()


def _segments() -> list[str]:
    return [k for k in SWIFT_KEYS if "/segments/" in k]


@needs_swift
def test_every_generation_from_the_operators_swift_byte_exact(api, make_agent, tmp_path, tempauth):
    base = f"t-{uuid.uuid4().hex[:12]}"
    _upload(f"swift://{base}/proj-a/freezer_backups")
    agent = make_agent(
        remote_storages=(("swift", f"swift://{base}"),), allowed_roots=(str(tmp_path),)
    )
    _restore_every_generation(api, agent, "swift", "freezer_backups", SWIFT_DOC, tmp_path)
    # another project of the same operator base sees nothing of it
    agent_b = make_agent(
        "b", remote_storages=(("swift", f"swift://{base}"),), allowed_roots=(str(tmp_path),),
        project_id="proj-b",
    )  # fmt: skip
    with pytest.raises(Refused, match="no backup named"):
        legacy_action.restore(
            _ctx(api, agent_b, _action("swift", "freezer_backups", SWIFT_DOC, tmp_path / "b"))
        )
    assert not (tmp_path / "b").exists()


@needs_swift
@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_damaged_segment_fails_clearly_and_writes_nothing(
    api, make_agent, tmp_path, tempauth, damage
):
    base = f"t-{uuid.uuid4().hex[:12]}"
    seg = _segments()[len(_segments()) // 2]
    if damage == "missing":
        _upload(f"swift://{base}/proj-a/freezer_backups", skip=seg)
    else:
        _upload(f"swift://{base}/proj-a/freezer_backups", corrupt=seg)
    agent = make_agent(
        remote_storages=(("swift", f"swift://{base}"),), allowed_roots=(str(tmp_path),)
    )
    level = seg.split("/")[4]  # data/tar/<backup>/<L0ts>/<level>_<ts>/segments/N
    gen = SWIFT_DOC["generations"][-1]
    action = _action("swift", "freezer_backups", SWIFT_DOC, tmp_path / "out",
                     legacy_timestamp=gen["timestamp"])  # fmt: skip
    with pytest.raises(LegacyError, match=level):
        legacy_action.restore(_ctx(api, agent, action))
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == [] and _spool_left(agent) == []


# ---------------------------------------------------------------- swift (--legacy-storage)


@pytest.fixture(scope="module")
def keystone(tmp_path_factory) -> Iterator[Any]:
    """A real Keystone whose catalog names a Keystone-authenticated proxy of the all-in-one."""
    try:
        aio = swiftaio.shared()
        server = swiftaio.keystone_with_swift(aio, tmp_path_factory.mktemp("keystone"))
    except swiftaio.SwiftUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo_container(keystone) -> str:
    """The agent's objects in a container of project demo's own account, where an upstream
    agent running with demo's openrc wrote them."""
    name = f"freezer_backups_{uuid.uuid4().hex[:8]}"
    mp = pytest.MonkeyPatch()
    try:
        _clean_env(mp, swiftaio.keystone_env(keystone, "demo"))
        _upload(f"swift://{name}")
    finally:
        mp.undo()
    return name


@needs_swift
@pytest.mark.slow  # starts a real Keystone once per module
def test_project_own_swift_account_every_generation(
    api, make_agent, tmp_path, monkeypatch, keystone, demo_container
):
    _clean_env(monkeypatch, swiftaio.keystone_env(keystone, "demo"))
    demo = keystone.accounts["demo"].project_id
    agent = make_agent(legacy_storages=("swift",), project_id=demo, allowed_roots=(str(tmp_path),))
    _restore_every_generation(api, agent, "swift", demo_container, SWIFT_DOC, tmp_path)


@needs_swift
@pytest.mark.slow
def test_project_own_swift_account_is_never_another_projects(
    api, make_agent, tmp_path, monkeypatch, keystone, demo_container
):
    demo = keystone.accounts["demo"].project_id
    other = keystone.accounts["other"].project_id
    action = _action("swift", demo_container, SWIFT_DOC, tmp_path / "out")

    # the other project's agent, with its own credentials: its account has no such container
    _clean_env(monkeypatch, swiftaio.keystone_env(keystone, "other"))
    agent = make_agent("o", legacy_storages=("swift",), project_id=other,
                       allowed_roots=(str(tmp_path),))  # fmt: skip
    with pytest.raises(Refused, match="no backup named"):
        legacy_action.restore(_ctx(api, agent, action))

    # credentials of another project than the one the agent serves: refused, not used
    agent = make_agent("d", legacy_storages=("swift",), project_id=demo,
                       allowed_roots=(str(tmp_path),))  # fmt: skip
    with pytest.raises(Refused, match=f"scoped to project {other}"):
        legacy_action.restore(_ctx(api, agent, action))

    # a multi-project agent's environment is no tenant's: refused before Keystone is asked
    _clean_env(monkeypatch, swiftaio.keystone_env(keystone, "demo"))
    agent = make_agent("m", legacy_storages=("swift",), project_id=demo, shared_passphrase=False,
                       allowed_roots=(str(tmp_path),))  # fmt: skip
    with pytest.raises(Refused, match="serves several projects"):
        legacy_action.restore(_ctx(api, agent, action))

    # v1 (tempauth) credentials are no project's Keystone credentials
    _clean_env(monkeypatch, swiftaio.shared().env())
    agent = make_agent("v1", legacy_storages=("swift",), project_id=demo,
                       allowed_roots=(str(tmp_path),))  # fmt: skip
    with pytest.raises(Refused, match="Keystone v3 credentials"):
        legacy_action.restore(_ctx(api, agent, action))
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the restore wizard's source


def _upstream_records(req, doc: dict, storage: str, container: str) -> list:
    """Backup records in the shape the upstream 19.0.0 agent reports them (freezer/job.py:
    its conf's storage, container, ssh_* and engine fields, no freezer-ui marker)."""
    from freezer_ui.api import freezer as api_freezer

    manager = api_freezer.freezerclient(req).backups
    for gen in doc["generations"]:
        manager.create(
            {
                "action": "backup", "always_level": "", "backup_media": "fs",
                "backup_name": doc["backup_name"], "container": container,
                "container_segments": "", "hostname": doc["hostname"],
                "path_to_backup": "/srv/data", "fs_real_path": "/srv/data",
                "max_level": "", "time_stamp": gen["timestamp"],
                "curr_backup_level": gen["level"], "storage": storage, "mode": "fs",
                "compression": "gzip", "engine_name": "tar", "client_os": "linux",
                "client_version": "19.0.0", "ssh_host": "nas" if storage == "ssh" else "",
                "ssh_username": "backup" if storage == "ssh" else "", "ssh_key": "",
                "ssh_port": 22 if storage == "ssh" else "", "proxy": "", "log_file": "",
            }
        )  # fmt: skip
    page, _more = api_freezer.backup_list(req, limit=100, offset=0)
    return [r for r in page if r.container == container]


def _wizard_restores_every_generation(api, agent, req, records, doc, out: Path) -> None:
    from freezer_ui.api import freezer as api_freezer
    from freezer_ui.api.legacy_source import LegacySource
    from freezer_ui.api.restore_sources import source_for
    from tests.agent.conftest import runs_of

    rec = records[0]
    src = source_for(rec)
    assert isinstance(src, LegacySource)
    gens = src.generations(req, rec)
    assert sorted(int(g.id) for g in gens) == [g["timestamp"] for g in doc["generations"]]
    for gen, want in zip(reversed(gens), doc["generations"], strict=True):
        target = out / gen.id
        action = src.restore_action(req, rec, gen, [], str(target), "never")
        assert (action["storage"], action["container"]) == (rec.storage, rec.container)
        job = {"client_id": HOST, "job_schedule": {}, "job_actions": [{"freezer_action": action}]}
        job_id = api_freezer.job_create(req, job)
        assert agent.poll() == [job_id]
        outcome = runs_of(api, job_id)[0]["actions"][0]
        assert outcome["result"] == "success", outcome
        assert snapshot(target) == want["tree"], gen.id
    assert _spool_left(agent) == []


def _request(project: str = "proj-a") -> Any:
    from types import SimpleNamespace

    user = SimpleNamespace(
        id="alice", project_id=project, roles=[{"name": "member"}],
        token=SimpleNamespace(id="t"), endpoint="http://127.0.0.1:1/v3",
        service_catalog=[], services_region="RegionOne",
    )  # fmt: skip
    return SimpleNamespace(user=user)


@needs_sshd
def test_wizard_restores_upstream_ssh_records_through_the_agent(
    api, make_agent, tmp_path, ssh_world
):
    server, base = ssh_world
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    req = _request()
    records = _upstream_records(req, SSH_DOC, "ssh", "old/freezer")
    agent = make_agent(remote_storages=(("ssh", server.url(base)),), allowed_roots=(str(allowed),))
    _wizard_restores_every_generation(api, agent, req, records, SSH_DOC, allowed)


@needs_swift
def test_wizard_restores_upstream_swift_records_through_the_agent(
    api, make_agent, tmp_path, tempauth
):
    base = f"t-{uuid.uuid4().hex[:12]}"
    _upload(f"swift://{base}/proj-a/freezer_backups")
    req = _request()
    records = _upstream_records(req, SWIFT_DOC, "swift", "freezer_backups")
    agent = make_agent(
        remote_storages=(("swift", f"swift://{base}"),), allowed_roots=(str(tmp_path),)
    )
    _wizard_restores_every_generation(api, agent, req, records, SWIFT_DOC, tmp_path)


def test_wizard_refuses_storages_the_agent_cannot_read(api, tmp_path):
    from freezer_ui.api.legacy_source import LegacySource
    from freezer_ui.api.restore_sources import RestoreSourceError

    req = _request()
    (rec, *_rest) = _upstream_records(req, SWIFT_DOC, "s3", "bucket/freezer")
    src = LegacySource()
    gen = src.generations(req, rec)[0]
    with pytest.raises(RestoreSourceError, match="s3 storage"):
        src.restore_action(req, rec, gen, [], str(tmp_path / "o"), "never")


@needs_sshd
def test_import_from_ssh_into_our_repository(api, make_agent, tmp_path, ssh_world):
    """legacy_import reads the same storage + container: every generation becomes one of ours
    (each restores to the recorded tree), with the legacy container named by its storage URL
    (no query: the operator's key path stays out of records), and the spool is gone."""
    from freezer_ui.engines.tar import TarEngine
    from freezer_ui.repository import Repository
    from freezer_ui.storage import get_storage

    server, base = ssh_world
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    agent = make_agent(remote_storages=(("ssh", server.url(base)),), allowed_roots=(str(allowed),))
    action = {
        "action": "admin", "legacy_import": True, "storage": "ssh", "container": "old/freezer",
        "backup_name": SSH_DOC["backup_name"], "hostname": SSH_DOC["hostname"],
        "repository": str(allowed / "repo"),
    }  # fmt: skip
    out = legacy_action.import_(_ctx(api, agent, action))
    assert len(out["imported"]) == len(SSH_DOC["generations"])
    assert _spool_left(agent) == []
    records = [b.get("backup_metadata") or {} for b in api.backups.list(limit=100)]
    origins = {r["imported_from"]["legacy_container"] for r in records if r.get("imported_from")}
    (origin,) = origins
    assert origin.startswith("ssh://") and origin.endswith("/proj-a/old/freezer"), origin
    repo = Repository.open(get_storage(str(allowed / "repo")))
    ours = {g.labels["legacy_timestamp"]: g.id for g in repo.generations()}
    for gen in SSH_DOC["generations"]:
        target = allowed / f"ours-{gen['timestamp']}"
        TarEngine().restore(repo, ours[str(gen["timestamp"])], str(target))
        assert snapshot(target) == gen["tree"]
