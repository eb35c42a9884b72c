"""Restore options (subset, overwrite policies) and safety against hostile manifests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freezer_ui.engines.base import TargetError
from tests.engines.conftest import backup
from tests.engines.treeutil import build_sample_tree, diff, snapshot


@pytest.fixture
def gen(repo, engine, tmp_path: Path) -> tuple[str, str]:
    src = str(tmp_path / "src")
    build_sample_tree(src)
    return src, backup(engine, repo, src).generation_id


def _files(root: Path) -> set[str]:
    out = set()
    for dp, dn, fn in os.walk(root):
        for n in dn + fn:
            out.add(os.path.relpath(os.path.join(dp, n), root))
    return out


def test_restore_subset(repo, engine, gen, tmp_path: Path) -> None:
    src, gid = gen
    out = tmp_path / "out"
    engine.restore(repo, gid, str(out), paths=["dir/sub/deeper", "/ünïcødé ✓.txt"])
    assert _files(out) == {
        "dir",
        "dir/sub",
        "dir/sub/deeper",
        "dir/sub/deeper/zero",
        "ünïcødé ✓.txt",
    }
    # ancestors get their backed-up metadata too
    assert os.stat(out / "dir/sub").st_mode & 0o777 == 0o750


def test_subset_hardlink_without_its_first_path(repo, engine, gen, tmp_path: Path) -> None:
    src, gid = gen
    out = tmp_path / "out"
    engine.restore(repo, gid, str(out), paths=["dir/sub/hardlink-to-a"])
    assert (out / "dir/sub/hardlink-to-a").read_bytes() == b"hello world\n"
    assert not (out / "dir/a.txt").exists()


def test_overwrite_never_keeps_existing(repo, engine, gen, tmp_path: Path) -> None:
    src, gid = gen
    out = tmp_path / "out"
    (out / "dir").mkdir(parents=True)
    (out / "dir/a.txt").write_text("mine")
    res = engine.restore(repo, gid, str(out))
    assert (out / "dir/a.txt").read_text() == "mine"
    assert "dir/a.txt" in res.skipped
    assert (out / "dir/sub/big.bin").stat().st_size == os.stat(
        os.path.join(src, "dir/sub/big.bin")
    ).st_size


def test_overwrite_if_newer(repo, engine, gen, tmp_path: Path) -> None:
    src, gid = gen
    out = tmp_path / "out"
    (out / "dir/sub").mkdir(parents=True)
    (out / "dir/a.txt").write_text("older local copy")
    os.utime(out / "dir/a.txt", ns=(1, 1))  # older than the backup's 1.5e18
    (out / "dir/sub/big.bin").write_text("newer local copy")  # mtime now: newer than backup
    res = engine.restore(repo, gid, str(out), overwrite="if-newer")
    assert (out / "dir/a.txt").read_bytes() == b"hello world\n"
    assert (out / "dir/sub/big.bin").read_text() == "newer local copy"
    assert res.skipped == ["dir/sub/big.bin"]


def test_overwrite_always(repo, engine, gen, tmp_path: Path) -> None:
    src, gid = gen
    out = tmp_path / "out"
    (out / "dir/sub/big.bin").mkdir(parents=True)  # a directory where a file was
    (out / "empty").write_text("a file where a directory was")
    (out / "dir/a.txt").write_text("x")
    engine.restore(repo, gid, str(out), overwrite="always")
    assert diff(snapshot(src), snapshot(str(out))) == []


def test_bad_target(repo, engine, gen, tmp_path: Path) -> None:
    _, gid = gen
    (tmp_path / "file").write_text("x")
    with pytest.raises(TargetError):
        engine.restore(repo, gid, str(tmp_path / "file"))
    with pytest.raises(ValueError):
        engine.restore(repo, gid, str(tmp_path / "o"), overwrite="sometimes")


# --- hostile manifests ----------------------------------------------------------------------


def _commit(repo, items: list[dict]) -> str:
    with repo.writer() as w:
        ref = w.add_chunk(b"PWNED")
        for it in items:
            if it.get("type") in ("file", "hardlink"):
                it.setdefault("chunks", [[ref.id, ref.size]])
                it.setdefault("size", ref.size)
            it.setdefault("mode", 0o644)
        return w.commit({"engine": "tar", "backup_name": "evil", "hostname": "x"}, items)


def _everything_under(root: Path) -> set[str]:
    return _files(root) if root.exists() else set()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    return d


def test_dotdot_absolute_and_nul_paths_are_rejected(repo, engine, tmp_path, outside) -> None:
    target = tmp_path / "target"
    gid = _commit(
        repo,
        [
            {"path": "../outside/escaped", "type": "file"},
            {"path": "ok/../../outside/escaped2", "type": "file"},
            {"path": str(outside / "absolute"), "type": "file"},
            {"path": "nul\x00byte", "type": "file"},
            {"path": "", "type": "file"},
            {"path": "a//b", "type": "file"},
            {"path": "./x", "type": "file"},
            {"path": 42, "type": "file"},
            {"path": "fine", "type": "file"},
        ],
    )
    res = engine.restore(repo, gid, str(target))
    assert _everything_under(outside) == set()
    assert _files(target) == {"fine"}
    assert len(res.rejected) == 8


def test_symlink_in_manifest_is_not_followed(repo, engine, tmp_path, outside) -> None:
    target = tmp_path / "target"
    gid = _commit(
        repo,
        [
            {"path": "link", "type": "symlink", "target": str(outside)},
            {"path": "link/escaped", "type": "file"},
            {"path": "link/sub/escaped", "type": "file"},
            {"path": "rel", "type": "symlink", "target": "../outside"},
            {"path": "rel/escaped", "type": "dir"},
            {"path": "hl", "type": "hardlink", "hardlink": "link/escaped"},
            {"path": "hl2", "type": "hardlink", "hardlink": "../outside/x"},
        ],
    )
    res = engine.restore(repo, gid, str(target))
    assert _everything_under(outside) == set()
    assert os.path.islink(target / "link") and os.path.islink(target / "rel")
    assert len(res.rejected) == 4
    # "hl" falls back to its own chunks: a plain file inside the target
    assert (target / "hl").read_bytes() == b"PWNED" and not (target / "hl").is_symlink()


def test_symlink_already_in_target_is_not_followed(repo, engine, tmp_path, outside) -> None:
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "planted")
    gid = _commit(
        repo,
        [
            {"path": "planted", "type": "dir"},
            {"path": "planted/escaped", "type": "file"},
        ],
    )
    for policy in ("never", "if-newer", "always"):
        engine.restore(repo, gid, str(target), overwrite=policy)
        assert _everything_under(outside) == set()


def test_symlink_leaf_is_replaced_not_written_through(repo, engine, tmp_path, outside) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (outside / "victim").write_text("original")
    os.symlink(outside / "victim", target / "f")
    gid = _commit(repo, [{"path": "f", "type": "file"}])
    engine.restore(repo, gid, str(target), overwrite="always")
    assert (outside / "victim").read_text() == "original"
    assert (target / "f").read_bytes() == b"PWNED" and not (target / "f").is_symlink()


def test_unknown_item_type_rejected(repo, engine, tmp_path) -> None:
    gid = _commit(repo, [{"path": "x", "type": "whiteout"}])
    res = engine.restore(repo, gid, str(tmp_path / "t"))
    assert res.rejected and _files(tmp_path / "t") == set()


def test_existing_target_keeps_its_metadata_under_never(repo, engine, gen, tmp_path: Path) -> None:
    src, gid = gen
    os.chmod(src, 0o700)
    gid = backup(engine, repo, src).generation_id
    out = tmp_path / "existing"
    out.mkdir()
    os.chmod(out, 0o755)
    engine.restore(repo, gid, str(out))
    assert os.stat(out).st_mode & 0o777 == 0o755
    engine.restore(repo, gid, str(tmp_path / "fresh"))
    assert os.stat(tmp_path / "fresh").st_mode & 0o777 == 0o700


def test_source_given_as_symlink_to_directory(repo, engine, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_text("x")
    os.symlink(real, tmp_path / "alias")
    gid = backup(engine, repo, str(tmp_path / "alias")).generation_id
    items = {i["path"]: i["type"] for i in repo.open_generation(gid).items()}
    assert items == {".": "dir", "f": "file"}


@pytest.mark.parametrize("depth", [253, 254, 255, 256, 257])
def test_hardlink_after_many_directories(repo, engine, tmp_path: Path, depth: int) -> None:
    # Restoring a deep chain fills the restore's cache of directory descriptors (256); the
    # hard link's source directory is then opened again, which may close every cached
    # descriptor, the link's own parent included. The link must still be made, in place.
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a/f").write_bytes(b"shared content")
    d = src
    for i in range(depth):
        d = d / f"d{i}"
    d.mkdir(parents=True)
    (src / "z").mkdir()
    os.link(src / "a/f", src / "z/link")
    gid = backup(engine, repo, str(src)).generation_id
    out = tmp_path / "out"
    res = engine.restore(repo, gid, str(out))
    assert res.rejected == [] and res.warnings == []
    assert diff(snapshot(str(src)), snapshot(str(out))) == []  # before reading moves atimes
    assert os.stat(out / "z/link").st_ino == os.stat(out / "a/f").st_ino
    assert (out / "z/link").read_bytes() == b"shared content"
