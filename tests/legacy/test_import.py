"""Import of upstream Freezer chains into our repository format: one generation per level."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from freezer_ui.engines import legacy
from freezer_ui.engines.legacy.__main__ import main as cli_main
from freezer_ui.engines.legacy.importer import import_backup
from freezer_ui.engines.tar import TarEngine
from freezer_ui.repository import Repository
from freezer_ui.storage.registry import get_storage

from .helpers import FIXTURES, expected, passphrase_file, snapshot


def _repo(path: Path, passphrase: str | None = None) -> Repository:
    return Repository.init(get_storage(str(path)), passphrase=passphrase, scrypt_n=2**10)


@pytest.mark.parametrize(
    "scenario",
    [
        "tar-gzip-maxlevel",
        "tar-xz-enc-md5",
        "rsyncv2-gzip-inc",
        "tar-gzip-always",
        "rsync-gzip-inc",
    ],
)
def test_every_level_becomes_a_full_generation(scenario: str, tmp_path: Path) -> None:
    doc = expected(scenario)
    repo = _repo(tmp_path / "repo")
    res = import_backup(
        FIXTURES / scenario,
        doc["backup"],
        repo,
        passphrase_file=passphrase_file(scenario),
        work_dir=tmp_path,
    )
    assert len(res.new) == len(doc["generations"]) and not res.skipped
    infos = {i.id: i for i in Repository.open(get_storage(str(tmp_path / "repo"))).generations()}
    for imp, g in zip(res.imported, doc["generations"], strict=True):
        info = infos[imp.generation_id]
        assert info.labels == {
            "origin": "freezer-legacy",
            "legacy_engine": imp.legacy.engine,
            "legacy_backup": doc["backup"],
            "legacy_chain": str(imp.legacy.level_zero_timestamp),
            "legacy_level": str(g["level"]),
            "legacy_timestamp": str(g["timestamp"]),
        }
        assert info.header["time_ns"] == g["timestamp"] * 10**9
        assert int(info.time.timestamp()) == g["timestamp"]
        assert (info.hostname, info.backup_name) == (doc["hostname"], doc["backup_name"])
        # Ours restores, on its own (no chain), what the legacy chain restores at that level.
        ours = tmp_path / f"ours-{g['timestamp']}"
        TarEngine().restore(repo, imp.generation_id, str(ours))
        theirs = tmp_path / f"theirs-{g['timestamp']}"
        legacy.restore(
            FIXTURES / scenario,
            doc["backup"],
            theirs,
            at=g["timestamp"],
            passphrase_file=passphrase_file(scenario),
        )
        assert snapshot(ours) == snapshot(theirs) == g["tree"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("freezer-legacy-import-")]


def test_import_is_idempotent_and_deduplicates(tmp_path: Path) -> None:
    scenario = "tar-gzip-maxlevel"
    doc = expected(scenario)
    repo = _repo(tmp_path / "repo")
    first = import_backup(FIXTURES / scenario, doc["backup"], repo)
    stats = [repo.open_generation(i.generation_id).info.stats for i in first.new]
    # Later levels share most data with level 0: little new data per generation.
    assert all(s["bytes_new"] < stats[0]["bytes_new"] / 2 for s in stats[1:])
    again = import_backup(FIXTURES / scenario, doc["backup"], repo)
    assert not again.new and len(again.skipped) == len(doc["generations"])
    assert len(repo.generation_ids()) == len(doc["generations"])


def test_later_runs_import_only_the_new_generations(tmp_path: Path) -> None:
    """A copy of the container made before the last run; importing the full one afterwards
    (or re-running an interrupted import) adds only what is missing."""
    scenario = "tar-bzip2"
    doc = expected(scenario)
    early = tmp_path / "early"
    shutil.copytree(FIXTURES / scenario, early)
    last = doc["generations"][-1]["timestamp"]
    for d in early.glob(f"metadata/*/*/*/*_{last}"):
        shutil.rmtree(d)
    repo = _repo(tmp_path / "repo")
    first = import_backup(early, doc["backup"], repo)
    assert len(first.new) == len(doc["generations"]) - 1
    res = import_backup(FIXTURES / scenario, doc["backup"], repo)
    assert len(res.skipped) == len(doc["generations"]) - 1
    assert [i.legacy.timestamp for i in res.new] == [last]


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _repo(tmp_path / "repo")
    argv = ["import", str(FIXTURES / "tar-xz"), "legacyhost_fs", "--repo", str(tmp_path / "repo")]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "3 generations imported, 0 already there" in out
    assert cli_main(argv) == 0
    assert "0 generations imported, 3 already there" in capsys.readouterr().out


def test_cli_import_encrypted_repository_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _repo(tmp_path / "repo", passphrase="s3cret")
    pf = tmp_path / "pf"
    pf.write_text("s3cret\n")
    base = ["import", str(FIXTURES / "tar-gzip-enc-sha256"), "legacyhost_fs"]
    # legacy passphrase missing: refused before anything is written
    rc = cli_main([*base, "--repo", str(tmp_path / "repo"), "--repo-passphrase-file", str(pf)])
    assert rc == 1 and "passphrase" in capsys.readouterr().err
    rc = cli_main(
        [
            *base,
            "--repo", str(tmp_path / "repo"), "--repo-passphrase-file", str(pf),
            "--passphrase-file", str(passphrase_file("tar-gzip-enc-sha256")),
        ]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert "2 generations imported" in capsys.readouterr().out
    # no repository there
    rc = cli_main([*base, "--repo", str(tmp_path / "nope")])
    assert rc == 1 and "error:" in capsys.readouterr().err
