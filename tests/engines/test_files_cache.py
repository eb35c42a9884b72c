"""The files cache: unchanged files are never opened; changed ones always are."""

from __future__ import annotations

import builtins
import os
import time
from pathlib import Path

import pytest

from freezer_ui.engines.filescache import FilesCache, cache_path
from freezer_ui.repository import RetentionPolicy
from tests.engines.conftest import backup
from tests.engines.treeutil import build_sample_tree, diff, snapshot

OLD = 1_500_000_000_000_000_000  # far from "now": not racy


def _age(root: str) -> None:
    """Move every mtime into the past and let ctimes age past the racy window (1 s), so the
    files are cacheable on the first backup."""
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                os.utime(p, ns=(OLD, OLD))
    time.sleep(1.1)


class OpenCounter:
    """Counts opens of paths under ``root`` through os.open and builtins.open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: str) -> None:
        self.root = os.fsencode(root)
        self.opened: list[str] = []
        real_os_open, real_open = os.open, builtins.open

        def os_open(path, *a, **kw):
            self._check(path, kw.get("dir_fd"))
            return real_os_open(path, *a, **kw)

        def b_open(file, *a, **kw):
            if isinstance(file, (str, bytes, os.PathLike)):
                self._check(file, None)
            return real_open(file, *a, **kw)

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(builtins, "open", b_open)

    def _check(self, path, dir_fd) -> None:
        p = os.fsencode(path)
        if dir_fd is None and p.startswith(self.root):
            self.opened.append(os.fsdecode(p))


@pytest.fixture
def src(tmp_path: Path) -> str:
    root = str(tmp_path / "src")
    build_sample_tree(root)
    _age(root)
    return root


def test_unchanged_rerun_opens_no_file(repo, engine, src, monkeypatch) -> None:
    first = backup(engine, repo, src)
    assert first.files_read == 5 and first.bytes_read > 0
    counter = OpenCounter(monkeypatch, src)
    second = backup(engine, repo, src)
    assert counter.opened == []
    assert second.files_read == 0 and second.bytes_read == 0
    assert second.files_from_cache == 5
    assert second.bytes_new == 0 and second.chunks_new == 0
    monkeypatch.undo()
    # the cached generation references the same chunks and restores identically
    g1 = {i["path"]: i.get("chunks") for i in repo.open_generation(first.generation_id).items()}
    g2 = {i["path"]: i.get("chunks") for i in repo.open_generation(second.generation_id).items()}
    assert g1 == g2


def test_same_size_modification_detected(repo, engine, src, tmp_path) -> None:
    backup(engine, repo, src)
    p = os.path.join(src, "dir/a.txt")
    st = os.stat(p)
    with open(p, "r+b") as f:
        f.write(b"HELLO")  # same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    res = backup(engine, repo, src)
    assert res.files_read == 1
    engine.restore(repo, res.generation_id, str(tmp_path / "out"))
    assert (tmp_path / "out/dir/a.txt").read_bytes() == b"HELLO world\n"


def test_restored_mtime_still_detected_by_ctime(repo, engine, src) -> None:
    backup(engine, repo, src)
    p = os.path.join(src, "dir/a.txt")
    st = os.stat(p)
    with open(p, "r+b") as f:
        f.write(b"J")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: only ctime moved
    res = backup(engine, repo, src)
    assert res.files_read == 1


def test_racy_file_is_not_cached(repo, engine, tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "fresh").write_text("just written")
    backup(engine, repo, str(src))
    res = backup(engine, repo, str(src))
    assert res.files_read == 1 and res.files_from_cache == 0


def test_cache_not_trusted_after_prune(repo, engine, src, tmp_path) -> None:
    backup(engine, repo, src)
    # drop every generation and its data: the cache now names chunks the repository lacks
    repo.forget(RetentionPolicy(keep_last=0, keep_daily=0), backup_name="test")
    repo.prune()
    assert repo.generations() == []
    res = backup(engine, repo, src)
    # every file with data is read again; only the empty file (no chunks) stays cached
    assert res.files_read == 4 and res.files_from_cache == 1
    assert res.bytes_read == res.bytes_new > 0
    engine.restore(repo, res.generation_id, str(tmp_path / "out"))
    assert diff(snapshot(src), snapshot(str(tmp_path / "out"))) == []


def test_cache_file_is_per_repo_and_source(repo, engine, src, tmp_path) -> None:
    backup(engine, repo, src)
    p = cache_path(repo.id, src, str(tmp_path / "cache"))
    assert p.is_file()
    assert cache_path(repo.id, src + "x", str(tmp_path / "cache")) != p
    loaded = FilesCache.load(p)
    assert set(loaded.paths()) == {
        "dir/a.txt",
        "dir/sub/big.bin",
        "dir/sub/deeper/zero",
        "ünïcødé ✓.txt",
        "sparse.img",
    }


def test_corrupt_cache_means_full_read(repo, engine, src, tmp_path) -> None:
    backup(engine, repo, src)
    p = cache_path(repo.id, src, str(tmp_path / "cache"))
    p.write_bytes(b"\x00garbage")
    res = backup(engine, repo, src)
    assert res.files_read == 5


def test_no_cache_option_reads_everything(repo, tmp_path, src) -> None:
    from freezer_ui.engines.tar import TarEngine

    eng = TarEngine(cache_dir=str(tmp_path / "c"), use_cache=False)
    backup(eng, repo, src)
    assert backup(eng, repo, src).files_read == 5


def test_unchanged_rerun_stores_no_new_metadata(repo, engine, src) -> None:
    """Listing directories, reading symlinks and other readers move atimes; that must not make
    the item stream of an unchanged tree differ (every run would store it again)."""
    dirs = [dp for dp, _, _ in os.walk(src)]
    for d in dirs:  # old atimes, set after the listing: the first backup's listing moves them
        os.utime(d, ns=(OLD, OLD))
    backup(engine, repo, src)
    # another reader (GNU tar, an indexer) moves the files' atimes between the two runs
    atimes = {}
    for dp, _, fns in os.walk(src):
        for fn in fns:
            p = os.path.join(dp, fn)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    f.read(1)
                atimes[p] = os.stat(p).st_atime_ns
    assert any(a != OLD for a in atimes.values())  # the reads really moved atimes
    chunks_before = set(repo.refresh_index().by_chunk)
    res = backup(engine, repo, src)
    assert res.files_read == 0
    assert set(repo.refresh_index().by_chunk) == chunks_before


def test_unwritable_cache_is_a_warning_not_a_failure(repo, tmp_path, src) -> None:
    from freezer_ui.engines.tar import TarEngine

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should go")
    eng = TarEngine(cache_dir=str(blocker))
    res = backup(eng, repo, src)
    assert res.generation_id in [g.id for g in repo.generations()]
    assert len(res.warnings) == 1 and "files cache not saved" in res.warnings[0]


def test_unchanged_run_writes_the_same_cache_file(repo, engine, src, tmp_path) -> None:
    # An unchanged file's record is copied as it was read: an unchanged run reproduces the
    # file byte for byte, with no temporary file left beside it.
    backup(engine, repo, src)
    p = cache_path(repo.id, src, str(tmp_path / "cache"))
    backup(engine, repo, src)
    first = p.read_bytes()
    backup(engine, repo, src)
    assert p.read_bytes() == first
    assert os.listdir(p.parent) == [p.name]


def test_both_segments_are_followed(repo, engine, src) -> None:
    """Files read in a run are recorded apart from unchanged ones (a window behind the walk);
    the next run must find both kinds."""
    backup(engine, repo, src)
    p = os.path.join(src, "dir/sub/deeper/zero")
    with open(p, "wb") as f:
        f.write(b"now with content")
    os.utime(p, ns=(OLD, OLD))
    time.sleep(1.1)  # past the racy window: the new content is cacheable
    assert backup(engine, repo, src).files_read == 1
    third = backup(engine, repo, src)
    assert third.files_read == 0 and third.files_from_cache == 5


def _st(ino: int, size: int, mtime: int, ctime: int) -> os.stat_result:
    return os.stat_result(
        (0o100644, ino, 1, 1, 0, 0, size, 0, 0, 0, 0, 0, 0, 0, 0, 0, mtime, ctime)
    )


def _filled(tmp_path: Path, paths: list[str]) -> Path:
    p = cache_path("r" * 32, "/src", str(tmp_path / "c"))
    cache = FilesCache.load(p)
    for i, path in enumerate(paths):
        cache.remember(path, _st(i + 1, i, i, i), [[bytes([i % 256]) * 32, i]], None, None)
    cache.save()
    return p


def test_walk_order_key_matches_the_walk(tmp_path: Path) -> None:
    from freezer_ui.engines.filescache import _walk_key
    from freezer_ui.engines.tar.walk import Excluder, WalkWarnings, walk

    root = tmp_path / "t"
    for d in ["a", "a/x", "a-b", "a.c", "b", "a/x/y", "Z", "é"]:
        (root / d).mkdir(parents=True)
        (root / d / "f").write_text("x")
    (root / "a0").write_text("x")
    walked = [rel for rel, _, _ in walk(str(root), Excluder([]), False, WalkWarnings())][1:]
    assert walked == sorted(walked, key=_walk_key)


def test_lookup_follows_the_walk_without_loading_everything(tmp_path: Path) -> None:
    """The cache is read along the walk: loading it decodes nothing, memory stays a read
    buffer however many entries there are, and gone or new files do not lose the thread."""
    import tracemalloc

    paths = sorted(f"d{i // 100:03d}/f{i % 100:02d}" for i in range(20_000))
    p = _filled(tmp_path, paths)
    assert p.stat().st_size > 1_500_000
    tracemalloc.start()
    cache = FilesCache.load(p)
    loaded, _ = tracemalloc.get_traced_memory()
    hits = 0
    for i, path in enumerate(paths):
        if i % 7 == 3:
            continue  # deleted since: its record is passed over
        e = cache.lookup(path, _st(i + 1, i, i, i))
        assert e is not None and e[4] == [[bytes([i % 256]) * 32, i]]
        cache.keep(path, e)
        hits += 1
        if i % 11 == 5:  # a new file, next in walk order
            assert cache.lookup(path + "-new", _st(1, 1, 1, 1)) is None
        if i == 10_000:
            halfway, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # a read buffer or two of records, not the file (let alone the file as Python objects)
    assert loaded < 500_000 and peak < 1_000_000
    assert list(cache.paths()) == [] and hits == 20_000 - len(range(3, 20_000, 7))
    # a stat change is a miss, and never returns another file's entry
    cache2 = FilesCache.load(p)
    assert cache2.lookup(paths[0], _st(99, 0, 0, 0)) is None
    assert cache2.lookup(paths[2], _st(2, 1, 1, 1)) is None  # paths[1]'s stat, paths[2]
    assert cache2.lookup(paths[1], _st(2, 1, 1, 1)) is None  # passed already: a miss


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty-tail", "other-place"])
def test_damaged_or_foreign_cache_is_ignored_with_a_warning(
    repo, engine, src, tmp_path, damage, caplog
) -> None:
    backup(engine, repo, src)
    p = cache_path(repo.id, src, str(tmp_path / "cache"))
    data = bytearray(p.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[:-1]
    elif damage == "empty-tail":
        data = data[:40]
    if damage == "other-place":
        # the same bytes where another source's cache goes: not trusted there
        other = tmp_path / "other"
        other.mkdir()
        q = cache_path(repo.id, str(other), str(tmp_path / "cache"))
        q.parent.mkdir(parents=True)
        q.write_bytes(bytes(data))
        cache = FilesCache.load(q)
        assert cache.warning and "another repository or source" in cache.warning
        assert not cache.old
        return
    p.write_bytes(bytes(data))
    cache = FilesCache.load(p)
    assert cache.warning and "ignored" in cache.warning and not cache.old
    assert "ignored" in caplog.text
    res = backup(engine, repo, src)
    assert res.files_read == 5  # every file read again, and the cache rewritten
    assert FilesCache.load(p).warning is None


def test_version_2_cache_file_is_removed_on_save(repo, engine, src, tmp_path) -> None:
    p = cache_path(repo.id, src, str(tmp_path / "cache"))
    p.parent.mkdir(parents=True)
    (p.parent / "files.msgpack").write_bytes(b"\x82\xa1v\x02")
    backup(engine, repo, src)
    assert os.listdir(p.parent) == [p.name]


def test_unwritable_cache_does_not_fail_the_backup(repo, engine, src, monkeypatch) -> None:
    import tempfile

    def no_space(*a, **kw):
        raise OSError(28, "No space left on device")

    import freezer_ui.engines.filescache as filescache

    monkeypatch.setattr(tempfile, "TemporaryFile", no_space)
    monkeypatch.setattr(filescache, "_WRITE_BLOCK", 1)  # every entry spills to the temp file
    res = backup(engine, repo, src)
    assert res.generation_id and res.files_read == 5
    assert any("files cache not saved" in w for w in res.warnings)
    monkeypatch.undo()
    # no cache was written: the next run reads everything again, and works
    assert backup(engine, repo, src).files_read == 5


def test_a_damaged_cache_is_reported_in_the_backup_result(repo, tmp_path, src) -> None:
    from freezer_ui.engines.tar import TarEngine

    eng = TarEngine(cache_dir=str(tmp_path / "cache"))
    first = backup(eng, repo, src)
    (cache_file,) = [p for p in (tmp_path / "cache").rglob("files.v3")]
    data = bytearray(cache_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cache_file.write_bytes(bytes(data))
    res = backup(eng, repo, src)
    assert res.files_read == first.files_read > 0  # every file read again, nothing trusted
    assert any("files cache" in w and "ignored" in w for w in res.warnings), res.warnings
