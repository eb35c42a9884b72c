"""Mount points (--one-file-system), device nodes and xattr edge cases."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.engines.conftest import IS_ROOT, backup


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")
def test_one_file_system_does_not_cross_mounts(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "mnt").mkdir(parents=True)
    (src / "local").write_text("here")
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src / "mnt")]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        (src / "mnt/remote").write_text("other fs")
        res = backup(engine, repo, str(src), one_file_system=True)
        paths = {i["path"] for i in repo.open_generation(res.generation_id).items()}
        assert paths == {".", "local", "mnt"}  # the mount point itself, empty
        res = backup(engine, repo, str(src))
        paths = {i["path"] for i in repo.open_generation(res.generation_id).items()}
        assert "mnt/remote" in paths
    finally:
        subprocess.run(["umount", str(src / "mnt")], check=True)


@pytest.mark.skipif(not IS_ROOT, reason="device nodes need root")
def test_device_nodes_roundtrip(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    res = backup(engine, repo, str(src))
    out = tmp_path / "out"
    engine.restore(repo, res.generation_id, str(out))
    st = os.lstat(out / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def test_xattr_not_supported_is_one_warning(repo, engine, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}").write_text(str(i))

    def unsupported(*a, **kw):
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "listxattr", unsupported)
    res = backup(engine, repo, str(src))
    monkeypatch.undo()
    assert len(res.warnings) == 1 and "xattrs not readable" in res.warnings[0]
    assert len(list(repo.open_generation(res.generation_id).items())) == 6


def test_xattr_restore_failure_is_a_warning(repo, engine, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    os.setxattr(src / "f", "user.k", b"v")
    res = backup(engine, repo, str(src))

    def denied(*a, **kw):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "setxattr", denied)
    rr = engine.restore(repo, res.generation_id, str(tmp_path / "out"))
    monkeypatch.undo()
    assert (tmp_path / "out/f").read_text() == "x"
    assert any("cannot set xattr user.k" in w for w in rr.warnings)
