"""Every format version ever written stays readable (docs/format.md §12)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from freezer_ui.repository import Repository, WrongPassphrase
from freezer_ui.storage import LocalStorage

from .make_fixtures import HERE, PASSPHRASE, content

FIXTURES = sorted(p.name for p in HERE.iterdir() if p.is_dir())


def test_fixtures_exist() -> None:
    assert "v1-none" in FIXTURES and "v1-aes-256-gcm" in FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_readable(name: str, tmp_path: Path) -> None:
    root = tmp_path / name
    shutil.copytree(HERE / name, root)  # a copy: opening must never need to write, but be safe
    storage = LocalStorage(str(root), create=False)
    encrypted = not name.endswith("-none")
    if encrypted:
        with pytest.raises(WrongPassphrase):
            Repository.open(storage, "not it")
    repo = Repository.open(storage, PASSPHRASE if encrypted else None)
    assert repo.format_version == int(name.split("-")[0][1:])
    gens = repo.generations()
    assert [g.backup_name for g in gens] == ["fixture", "fixture"]
    for n, info in enumerate(gens):
        expected = content()
        if n:
            expected["dir/new"] = b"second generation\n"
        got = {}
        for item in repo.open_generation(info.id).items():
            if item["type"] == "file":
                got[item["path"]] = b"".join(repo.read_chunk(bytes(c[0])) for c in item["chunks"])
        assert got == expected
    report = repo.verify()
    assert report.ok, report.errors
