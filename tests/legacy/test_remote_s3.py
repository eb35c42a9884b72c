"""Upstream Freezer containers read from S3: RemoteContainer + S3Storage + Swift's s3api.

What the real freezer 19.0.0 agent leaves on S3 is in tests/legacy/remote_fixtures/s3-tar-gzip/
(tests/legacy/remote_make_fixture.py, ``s3``): its s3 storage uploads the data stream as one
multipart object ``.../data``, then fails (``len()`` of an open file in ``put_file``) before
writing ``engine_metadata`` and ``metadata``; its own restore then finds no backup.  Our reader
must say the same, plainly.

A container that *is* complete on S3 (one copied there from another Freezer storage, e.g.
``aws s3 sync`` of a local or ssh container: every Freezer storage lays a container out the same
way) must restore like anywhere else: the real agent's ssh container (remote_fixtures/
ssh-tar-gzip) is put into the s3api, as stored, and every generation restored byte-exact.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from freezer_ui.engines.legacy import LegacyError
from freezer_ui.engines.legacy.__main__ import main as legacy_main
from freezer_ui.engines.legacy.remote import RemoteContainer
from freezer_ui.storage.s3 import S3Storage
from tests.legacy.helpers import leftovers, snapshot
from tests.legacy.remote_make_fixture import OUT, S3_SCENARIO, SCENARIO, agent_bin, generate_s3
from tests.storage import swiftaio

pytestmark = pytest.mark.skipif(
    swiftaio.missing_reason() is not None, reason=str(swiftaio.missing_reason())
)

S3_FIXTURE = OUT / S3_SCENARIO
S3_DOC = json.loads((OUT / f"{S3_SCENARIO}.expected.json").read_text())
SSH_FIXTURE = OUT / SCENARIO
SSH_DOC = json.loads((OUT / f"{SCENARIO}.expected.json").read_text())
GENS = SSH_DOC["generations"]


def _keys(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


class Recording(S3Storage):
    """The real s3 storage, remembering which objects were read."""

    fetched: list[str]

    def get(self, key: str) -> Iterator[bytes]:
        self.fetched.append(key)
        return super().get(key)


def _upload(root: Path, prefix: str = "") -> str:
    """A fresh bucket of the shared all-in-one holding ``root``'s objects as stored (under
    ``prefix``); its URL.  The AWS environment is the one the s3 contract factory sets."""
    s = swiftaio.s3_storage_factory(Path("."))
    url = s.url
    if prefix:
        s.close()
        bucket, _, query = url.partition("?")
        url = f"{bucket}/{prefix}?{query}"
        s = S3Storage.from_url(url)
    for key in _keys(root):
        s.put(key, [(root / key).read_bytes()])
    s.close()
    return url


@pytest.fixture(scope="module")
def complete_url() -> str:
    return _upload(SSH_FIXTURE, "freezer")


@pytest.fixture
def storage(complete_url: str) -> Iterator[Recording]:
    s = Recording.from_url(complete_url)
    assert isinstance(s, Recording)
    s.fetched = []
    yield s
    s.close()


# -- what the agent itself leaves on S3 --------------------------------------------------------


def test_fixture_is_what_the_agents_s3_storage_leaves() -> None:
    assert S3_DOC["storage"] == "s3" and S3_DOC["freezer_version"] == "19.0.0"
    assert (
        S3_DOC["agent_backup"].startswith("exit 1: ") and "has no len()" in S3_DOC["agent_backup"]
    )
    assert "No matching backup name" in S3_DOC["agent_restore"]
    (key,) = _keys(S3_FIXTURE)  # the data object, and nothing else
    assert key.startswith(f"data/tar/{S3_DOC['backup']}/") and key.endswith("/data")
    assert S3_DOC["objects"] == {key: (S3_FIXTURE / key).stat().st_size}


def test_the_orphan_data_object_is_an_intact_gzip_tar_of_the_source(tmp_path: Path) -> None:
    """The upload itself worked: only the metadata is lost (so an operator who finds such
    objects knows what they hold).  GNU tar extracts it, as the agent's own restore would."""
    (key,) = _keys(S3_FIXTURE)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["tar", "-xzf", str(S3_FIXTURE / key), "-C", str(out), "--listed-incremental=/dev/null"],
        check=True,
        timeout=60,
    )
    assert snapshot(out) == S3_DOC["generations"][0]["tree"]


@pytest.mark.slow
@pytest.mark.skipif(
    not agent_bin().exists(), reason="no freezer agent venv: python tools/make_legacy_fixtures.py"
)
def test_live_agent_on_s3_leaves_what_the_fixture_holds(tmp_path: Path) -> None:
    """The real agent, run now: the same verdicts, again one data object and nothing else."""
    doc = generate_s3(tmp_path / "fixtures", tmp_path / "work")
    assert doc["agent_backup"] == S3_DOC["agent_backup"]
    assert doc["agent_restore"] == S3_DOC["agent_restore"]
    (key,) = _keys(tmp_path / "fixtures" / S3_SCENARIO)
    assert key.startswith(f"data/tar/{S3_DOC['backup']}/") and key.endswith("/data")


def test_our_reader_reports_the_agents_failed_run(tmp_path: Path) -> None:
    url = _upload(S3_FIXTURE)
    s = S3Storage.from_url(url)
    with RemoteContainer(s, tmp_path / "spool") as rc:
        (b,) = rc.discover()
        assert (b.engine, b.key) == ("tar", S3_DOC["backup"])
        assert b.generations == []
        (note,) = b.notes
        assert "data without metadata" in note
        assert note.startswith(url.split("?")[0])  # names the bucket, not the spool
        with pytest.raises(LegacyError):
            rc.restore(b, tmp_path / "out")
    s.close()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


# -- a complete container on S3 ------------------------------------------------------------------


def test_discover_on_s3_reads_only_metadata(storage: Recording, tmp_path: Path) -> None:
    with RemoteContainer(storage, tmp_path) as rc:
        (b,) = rc.discover()
        assert (b.engine, b.key) == ("tar", SSH_DOC["backup"])
        assert [(g.level, g.timestamp) for g in b.generations] == [
            (g["level"], g["timestamp"]) for g in GENS
        ]
        for g in b.generations:
            key = g.data_path.relative_to(rc.spool).as_posix()
            assert g.size == (SSH_FIXTURE / key).stat().st_size > 0
        assert storage.fetched and all(k.startswith("metadata/") for k in storage.fetched)


@pytest.mark.parametrize("index", range(len(GENS)))
def test_restore_each_generation_from_s3(storage: Recording, tmp_path: Path, index: int) -> None:
    gen = GENS[index]
    with RemoteContainer(storage, tmp_path / "spool") as rc:
        (b,) = rc.discover()
        storage.fetched.clear()
        res = rc.restore(b, tmp_path / "out", at=gen["timestamp"])
        assert snapshot(tmp_path / "out") == gen["tree"]
        assert [g.level for g in res.generations] == list(range(gen["level"] + 1))
        want = set()
        for g in res.generations:
            rel = g.data_path.relative_to(rc.spool).parent.as_posix()
            want |= {f"{rel}/data", f"{rel}/engine_metadata"}
        assert set(storage.fetched) == want  # only the applied chain
        assert sum(p.stat().st_size for p in rc.spool.rglob("data/**/*") if p.is_file()) == 0
    assert leftovers(tmp_path) == []


def test_cli_ls_and_restore_take_an_s3_url(
    complete_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    assert legacy_main(["ls", complete_url, "--json", "--spool-dir", str(spool)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [g["timestamp"] for g in doc[0]["generations"]] == [g["timestamp"] for g in GENS]
    out = tmp_path / "out"
    assert legacy_main(["restore", complete_url, SSH_DOC["backup"], "--target", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "restored tar/" in printed and "testing" not in printed  # no secret echoed
    assert snapshot(out) == GENS[-1]["tree"]
    assert list(spool.iterdir()) == []


def test_cli_import_from_s3_into_an_encrypted_repository_on_s3(
    complete_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both ends on S3: the legacy container in one bucket, our repository in another."""
    from freezer_ui.engines.tar import TarEngine
    from freezer_ui.repository import Repository
    from freezer_ui.storage import get_storage
    from tests.repository.conftest import FAST_SCRYPT, PASSPHRASE

    repo_url = swiftaio.s3_storage_factory(tmp_path).url
    Repository.init(get_storage(repo_url), PASSPHRASE, "aes-256-gcm", scrypt_n=FAST_SCRYPT)
    pw = tmp_path / "passphrase"
    pw.write_text(PASSPHRASE)
    argv = ["import", complete_url, SSH_DOC["backup"], "--repo", repo_url]
    argv += ["--repo-passphrase-file", str(pw)]
    assert legacy_main([*argv, "--work-dir", str(tmp_path)]) == 0
    assert f"{len(GENS)} generations imported, 0 already there" in capsys.readouterr().out
    assert legacy_main(argv) == 0  # idempotent
    assert f"0 generations imported, {len(GENS)} already there" in capsys.readouterr().out
    repo = Repository.open(get_storage(repo_url), PASSPHRASE)
    gens = repo.generations()
    assert len(gens) == len(GENS)
    out = tmp_path / "out"
    TarEngine(use_cache=False).restore(repo, gens[-1].id, str(out))
    assert snapshot(out) == GENS[-1]["tree"]
