"""Backup -> restore reproduces the tree: content and metadata, every entry type."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.engines.conftest import IS_ROOT, backup
from tests.engines.treeutil import build_sample_tree, diff, make_sparse, snapshot


@pytest.fixture
def src(tmp_path: Path) -> str:
    root = str(tmp_path / "src")
    build_sample_tree(root)
    if IS_ROOT:
        os.chown(os.path.join(root, "dir/sub/big.bin"), 1234, 5678)
        os.lchown(os.path.join(root, "dir/sub/link-to-a"), 4321, 8765)
    return root


def test_roundtrip_sample_tree(repo, engine, src, tmp_path: Path) -> None:
    before = snapshot(src)
    res = backup(engine, repo, src)
    assert res.warnings == []
    assert res.generation_id in [g.id for g in repo.generations()]
    out = str(tmp_path / "out")
    rr = engine.restore(repo, res.generation_id, out)
    assert rr.rejected == [] and rr.warnings == []
    assert diff(before, snapshot(out)) == []
    # backing up does not change the source (atimes included: files are read with O_NOATIME)
    assert diff(before, snapshot(src)) == []


def test_sparse_file_stays_sparse(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    p = str(src / "disk.img")
    size = 256 << 20
    make_sparse(p, size, [(4096, b"a" * 100_000), (100 << 20, os.urandom(300_000))])
    res = backup(engine, repo, str(src))
    item = next(
        i for i in repo.open_generation(res.generation_id).items() if i["path"] == "disk.img"
    )
    assert item["size"] == size and len(item["sparse"]) >= 2
    assert sum(n for _, n in item["chunks"]) < 1 << 20  # only data extents were stored
    out = tmp_path / "out"
    engine.restore(repo, res.generation_id, str(out))
    st = os.stat(out / "disk.img")
    assert st.st_size == size
    assert st.st_blocks * 512 < 4 << 20  # holes were seeked over, not written
    with open(p, "rb") as a, open(out / "disk.img", "rb") as b:
        while True:
            x, y = a.read(1 << 20), b.read(1 << 20)
            assert x == y
            if not x:
                break


def test_file_ending_in_hole(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_sparse(str(src / "tail"), 50 << 20, [(0, b"x" * 10)])
    make_sparse(str(src / "allhole"), 30 << 20, [])
    res = backup(engine, repo, str(src))
    out = tmp_path / "out"
    engine.restore(repo, res.generation_id, str(out))
    assert diff(snapshot(str(src)), snapshot(str(out))) == []


def test_excludes_and_empty_dirs(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "keep/empty").mkdir(parents=True)
    (src / "cache/x").mkdir(parents=True)
    (src / "keep/a.tmp").write_text("tmp")
    (src / "keep/b.txt").write_text("b")
    (src / "cache/x/y").write_text("y")
    res = backup(engine, repo, str(src), excludes=["*.tmp", "cache"])
    paths = {i["path"] for i in repo.open_generation(res.generation_id).items()}
    assert paths == {".", "keep", "keep/b.txt", "keep/empty"}


def test_non_utf8_names_roundtrip(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    bad = os.fsencode(str(src)) + b"/caf\xe9-latin1"
    with open(bad, "wb") as f:
        f.write(b"bytes name")
    os.symlink(b"\xff\xfe-target", os.fsencode(str(src)) + b"/l\xff")
    res = backup(engine, repo, str(src))
    assert res.warnings == []
    out = tmp_path / "out"
    engine.restore(repo, res.generation_id, str(out))
    assert diff(snapshot(str(src)), snapshot(str(out))) == []


def test_every_generation_is_full(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"one")
    g1 = backup(engine, repo, str(src)).generation_id
    (src / "b").write_bytes(b"two")
    os.unlink(src / "a")
    g2 = backup(engine, repo, str(src)).generation_id
    engine.restore(repo, g1, str(tmp_path / "r1"))
    engine.restore(repo, g2, str(tmp_path / "r2"))
    assert sorted(os.listdir(tmp_path / "r1")) == ["a"]
    assert sorted(os.listdir(tmp_path / "r2")) == ["b"]


@pytest.mark.skipif(not IS_ROOT, reason="owners are only restored by root")
def test_owners_restored_as_root(repo, engine, src, tmp_path: Path) -> None:
    res = backup(engine, repo, src)
    out = tmp_path / "out"
    engine.restore(repo, res.generation_id, str(out))
    st = os.stat(out / "dir/sub/big.bin")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    st = os.lstat(out / "dir/sub/link-to-a")
    assert (st.st_uid, st.st_gid) == (4321, 8765)


def test_directory_times_set_after_contents(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d/e").mkdir(parents=True)
    (src / "d/e/f").write_text("f")
    old = 1_000_000_000_000_000_000
    for p in ("d/e", "d"):
        os.utime(src / p, ns=(old, old))
    res = backup(engine, repo, str(src))
    out = tmp_path / "out"
    time.sleep(0.01)
    engine.restore(repo, res.generation_id, str(out))
    assert os.stat(out / "d").st_mtime_ns == old
    assert os.stat(out / "d/e").st_mtime_ns == old


def test_readonly_directory_restores(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "ro").mkdir(parents=True)
    (src / "ro/f").write_text("inside")
    os.chmod(src / "ro", 0o500)
    try:
        res = backup(engine, repo, str(src))
        out = tmp_path / "out"
        engine.restore(repo, res.generation_id, str(out))
        assert (out / "ro/f").read_text() == "inside"
        assert os.stat(out / "ro").st_mode & 0o777 == 0o500
    finally:
        os.chmod(src / "ro", 0o700)
        if (tmp_path / "out/ro").exists():
            os.chmod(tmp_path / "out/ro", 0o700)


def test_labels_are_kept_in_the_generation_header(repo, engine, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    labelled = engine.backup(
        repo, str(src), backup_name="b", hostname="h", labels={"project_id": "p1"}
    )
    plain = engine.backup(repo, str(src), backup_name="b", hostname="h")
    infos = {g.id: g for g in repo.generations()}
    assert infos[labelled.generation_id].labels == {"project_id": "p1"}
    assert infos[plain.generation_id].labels == {}


def test_progress_moves_within_a_large_file(repo, engine, tmp_path: Path) -> None:
    # A disk image or database dump must not sit at "0 bytes" until it has been read whole:
    # bytes are counted per chunk, the file once it is complete, and the total is exact.
    from freezer_ui.progress import Progress

    src = tmp_path / "src"
    src.mkdir()
    size = 24 * repo.chunker_params.max
    (src / "image.raw").write_bytes(os.urandom(size))
    seen = []
    engine.backup(
        repo, str(src), backup_name="b", hostname="h", progress=Progress(seen.append, interval=0)
    )
    assert any(0 < s.bytes_done < size and s.files_done <= 1 for s in seen)
    assert seen[-1].bytes_done == size
    assert seen[-1].files_done == 2  # the root directory and the file
