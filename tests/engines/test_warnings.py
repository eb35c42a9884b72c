"""Unreadable files and files changing during the backup are warnings, not failures."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from tests.engines.conftest import backup


def test_unreadable_file_is_a_warning(repo, engine, tmp_path: Path, monkeypatch) -> None:
    # the patched os.open must reach the workers: forked ones inherit it, exec'ed ones not
    monkeypatch.setenv("FREEZER_UI_BACKUP_WORKERS_START", "fork")
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok").write_text("fine")
    (src / "secret").write_text("no access")
    os.chmod(src / "secret", 0)
    # As root chmod 000 does not stop reads, so the permission error is injected at the
    # syscall the engine uses; as a normal user the chmod alone triggers it.
    real_open = os.open

    def deny(path, flags, *a, **kw):
        if os.fsdecode(path).endswith("/secret"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", deny)
    res = backup(engine, repo, str(src))
    monkeypatch.undo()
    assert len(res.warnings) == 1 and "secret: cannot read: Permission denied" in res.warnings[0]
    paths = {i["path"] for i in repo.open_generation(res.generation_id).items()}
    assert paths == {".", "ok"}
    stats = repo.open_generation(res.generation_id).header["stats"]
    assert stats["warnings_count"] == 1 and "secret" in stats["warnings"][0]


def test_vanished_file_is_skipped_quietly(repo, engine, tmp_path: Path, monkeypatch) -> None:
    # the patched os.open must reach the workers: forked ones inherit it, exec'ed ones not
    monkeypatch.setenv("FREEZER_UI_BACKUP_WORKERS_START", "fork")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    (src / "gone").write_text("g")
    real_open = os.open

    def vanish(path, flags, *a, **kw):
        if os.fsdecode(path).endswith("/gone") and os.path.exists(path):
            os.unlink(path)
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", vanish)
    res = backup(engine, repo, str(src))
    monkeypatch.undo()
    assert res.warnings == []
    assert {i["path"] for i in repo.open_generation(res.generation_id).items()} == {".", "a"}


def test_unlistable_directory_is_a_warning(repo, engine, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    (src / "locked").mkdir(parents=True)
    (src / "locked/f").write_text("f")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fsdecode(path).endswith("/locked"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    res = backup(engine, repo, str(src))
    monkeypatch.undo()
    assert any("locked: cannot list directory" in w for w in res.warnings)
    assert {i["path"] for i in repo.open_generation(res.generation_id).items()} == {".", "locked"}
