"""Upstream Freezer containers read over ssh: RemoteContainer + SSHStorage + a real sshd.

The container in tests/legacy/remote_fixtures/ was written by the real freezer 19.0.0 agent
through its own ssh storage into a real sshd (tests/legacy/remote_make_fixture.py); here a real
sshd serves it again and our reader restores every generation byte-exact over SFTP. When the
agent's venv exists, one test also runs the agent live.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from freezer_ui.engines.legacy import LegacyError, find_backup
from freezer_ui.engines.legacy.__main__ import main as legacy_main
from freezer_ui.engines.legacy.remote import RemoteContainer
from freezer_ui.storage import STORAGE_TABLE, Storage
from freezer_ui.storage.ssh import SSHStorage
from tests.legacy.helpers import leftovers, snapshot
from tests.legacy.remote_make_fixture import OUT, SCENARIO, agent_bin, generate, ssh_target
from tests.storage.sshd import SSHServer, missing_reason, shared_server

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))

FIXTURE = OUT / SCENARIO
DOC = json.loads((OUT / f"{SCENARIO}.expected.json").read_text())
GENS = DOC["generations"]


class Recording(SSHStorage):
    """The real ssh storage, remembering which objects were read (to check what was fetched)."""

    fetched: list[str]

    def get(self, key: str) -> Iterator[bytes]:
        self.fetched.append(key)
        return super().get(key)


@pytest.fixture(autouse=True)
def _ssh_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI opens URLs through get_storage(); until the registry lists "ssh" (its owner
    # adds it), the tests put it there.
    monkeypatch.setitem(STORAGE_TABLE, "ssh", SSHStorage)


@pytest.fixture
def server() -> SSHServer:
    return shared_server()


@pytest.fixture
def storage(server: SSHServer) -> Iterator[Recording]:
    s = Recording.from_url(server.url(FIXTURE))
    assert isinstance(s, Recording)
    s.fetched = []
    yield s
    s.close()


def test_fixture_was_written_by_the_agent_over_ssh() -> None:
    assert DOC["storage"] == "ssh" and DOC["freezer_version"] == "19.0.0"
    assert [g["level"] for g in GENS] == [0, 1, 2]
    # The agent's own restore of level 0 matched; later ones differ only by the shared-inode
    # fault docs/legacy.md describes (a changed file that was a hard link).
    assert GENS[0]["upstream_restore"] == "same"


def test_discover_over_ssh_reads_only_metadata(storage: Recording, tmp_path: Path) -> None:
    with RemoteContainer(storage, tmp_path) as rc:
        (b,) = rc.discover()
        assert (b.engine, b.key) == ("tar", DOC["backup"])
        assert [(g.level, g.timestamp) for g in b.generations] == [
            (g["level"], g["timestamp"]) for g in GENS
        ]
        for g in b.generations:
            assert g.size == (FIXTURE / g.data_path.relative_to(rc.spool)).stat().st_size > 0
        assert all(k.startswith("metadata/") for k in storage.fetched)
        assert len(storage.fetched) == len(GENS)
    assert not rc.spool.exists()


@pytest.mark.parametrize("index", range(len(GENS)))
def test_restore_each_generation_over_ssh(storage: Recording, tmp_path: Path, index: int) -> None:
    gen = GENS[index]
    with RemoteContainer(storage, tmp_path / "spool") as rc:
        (b,) = rc.discover()
        storage.fetched.clear()
        res = rc.restore(b, tmp_path / "out", at=gen["timestamp"])
        assert snapshot(tmp_path / "out") == gen["tree"]
        assert [g.level for g in res.generations] == list(range(gen["level"] + 1))
        # Only the applied chain's data and engine metadata crossed the wire...
        want = set()
        for g in res.generations:
            rel = g.data_path.relative_to(rc.spool).parent.as_posix()
            want |= {f"{rel}/data", f"{rel}/engine_metadata"}
        assert set(storage.fetched) == want
        # ...and none of it stays on disk afterwards.
        assert sum(p.stat().st_size for p in rc.spool.rglob("data/**/*") if p.is_file()) == 0
    assert leftovers(tmp_path) == []


def test_cli_ls_and_restore_take_an_ssh_url(
    server: SSHServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.url(FIXTURE)
    spool = tmp_path / "spool"
    spool.mkdir()
    assert legacy_main(["ls", url, "--json", "--spool-dir", str(spool)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [g["timestamp"] for g in doc[0]["generations"]] == [g["timestamp"] for g in GENS]
    assert doc[0]["generations"][0]["size"] > 0
    out = tmp_path / "out"
    assert legacy_main(["restore", url, DOC["backup"], "--target", str(out)]) == 0
    assert "restored tar/" in capsys.readouterr().out
    assert snapshot(out) == GENS[-1]["tree"]
    assert list(spool.iterdir()) == []  # the spool is removed after each command


def test_import_over_ssh(server: SSHServer, storage: Recording, tmp_path: Path) -> None:
    from freezer_ui.engines.tar import TarEngine
    from freezer_ui.repository import Repository
    from freezer_ui.storage import LocalStorage

    local = LocalStorage(str(tmp_path / "repo"))
    Repository.init(local, None, "none")
    repo = Repository.open(local)
    with RemoteContainer(storage, tmp_path) as rc:
        res = rc.import_backup(DOC["backup"], repo, work_dir=str(tmp_path))
    assert len(res.new) == len(GENS)
    for item, gen in zip(res.new, GENS, strict=True):
        out = tmp_path / f"out-{gen['level']}"
        TarEngine(use_cache=False).restore(repo, item.generation_id, str(out))
        assert snapshot(out) == gen["tree"]


def test_notes_name_the_storage_not_the_spool(server: SSHServer, tmp_path: Path) -> None:
    copy = tmp_path / "container"
    shutil.copytree(FIXTURE, copy)
    # What an agent killed before writing its last metadata leaves behind.
    shutil.rmtree(next(copy.glob("metadata/tar/*/*/2_*")))
    s = SSHStorage.from_url(server.url(copy))
    with RemoteContainer(s, tmp_path) as rc:
        (b,) = rc.discover()
        assert [g.level for g in b.generations] == [0, 1]
        assert any(n.startswith(f"ssh://{server.user}@") and "failed" in n for n in b.notes)
        assert not any(str(rc.spool) in n for n in b.notes)
    s.close()


def test_unreachable_container_is_one_error_line(
    server: SSHServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kh = tmp_path / "kh"
    kh.write_text("")
    url = server.url(FIXTURE).replace(str(server.known_hosts), str(kh))
    assert legacy_main(["ls", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not in" in err and err.count("\n") == 1


def test_a_placeholder_is_never_taken_for_data(storage: Storage, tmp_path: Path) -> None:
    with RemoteContainer(storage, tmp_path) as rc:
        (b,) = rc.discover()
        from freezer_ui.engines.legacy import restore

        with pytest.raises(LegacyError):
            restore(rc.spool, b, tmp_path / "out")  # bypassing the fetch: must fail loudly
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    not agent_bin().exists(),
    reason=f"the freezer 19.0.0 agent is not installed at {agent_bin()} "
    "(python tools/make_legacy_fixtures.py creates it); the committed fixture covers CI",
)
def test_live_agent_over_ssh_then_our_reader(server: SSHServer, tmp_path: Path) -> None:
    container = tmp_path / "fixtures" / SCENARIO
    doc = generate(ssh_target(server, container), tmp_path / "fixtures", tmp_path / "work")
    s = SSHStorage.from_url(server.url(tmp_path / "fixtures" / SCENARIO))
    with RemoteContainer(s, tmp_path) as rc:
        b = find_backup(rc.discover(), str(doc["backup"]))
        for g in doc["generations"]:  # type: ignore[union-attr]
            out = tmp_path / f"out-{g['timestamp']}"
            rc.restore(b, out, at=g["timestamp"])
            assert snapshot(out) == g["tree"]
    s.close()


def test_cli_import_from_ssh_into_a_repository_over_ssh(
    server: SSHServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from freezer_ui.repository import Repository
    from freezer_ui.storage import get_storage

    repo_url = server.url(tmp_path / "repo")
    Repository.init(get_storage(repo_url), None, "none")
    argv = ["import", server.url(FIXTURE), DOC["backup"], "--repo", repo_url]
    assert legacy_main([*argv, "--work-dir", str(tmp_path)]) == 0
    assert f"{len(GENS)} generations imported, 0 already there" in capsys.readouterr().out
    assert legacy_main(argv) == 0  # idempotent: nothing fetched is needed the second time
    assert f"0 generations imported, {len(GENS)} already there" in capsys.readouterr().out
    bad = repo_url.replace(str(server.known_hosts), str(tmp_path / "missing_known_hosts"))
    assert legacy_main(["import", server.url(FIXTURE), DOC["backup"], "--repo", bad]) == 1
    assert "known_hosts" in capsys.readouterr().err


def test_oversized_metadata_is_not_copied_but_noted(server: SSHServer, tmp_path: Path) -> None:
    from freezer_ui.engines.legacy import remote

    copy = tmp_path / "container"
    shutil.copytree(FIXTURE, copy)
    meta = next(copy.glob("metadata/tar/*/*/2_*")) / "metadata"
    meta.write_bytes(b"{" + b" " * remote.MAX_METADATA + b"}")  # a hostile or broken server
    s = SSHStorage.from_url(server.url(copy))
    with RemoteContainer(s, tmp_path / "spool") as rc:
        (b,) = rc.discover()
        assert [g.level for g in b.generations] == [0, 1]
        assert any("not a Freezer metadata file" in n for n in b.notes)
        assert sum(p.stat().st_size for p in rc.spool.rglob("*") if p.is_file()) < 1000
    s.close()
