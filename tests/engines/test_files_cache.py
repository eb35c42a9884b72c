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
    assert set(loaded.old) == {
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


def test_cache_file_is_one_msgpack_document(repo, engine, src, tmp_path) -> None:
    # New entries go to a temporary file during the run and are copied behind the header
    # at save: the result must still be exactly packb of the document it decodes to.
    import msgpack

    backup(engine, repo, src)
    backup(engine, repo, src)  # the second run writes kept (loaded) entries
    p = cache_path(repo.id, src, str(tmp_path / "cache"))
    raw = p.read_bytes()
    doc = msgpack.unpackb(raw, raw=False)
    assert doc["v"] == 2 and len(doc["entries"]) == 5
    assert msgpack.packb(doc, use_bin_type=True) == raw
    assert os.listdir(p.parent) == [p.name]  # no temporary file left beside it


def test_unwritable_cache_does_not_fail_the_backup(repo, engine, src, monkeypatch) -> None:
    import tempfile

    def no_space(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_space)
    res = backup(engine, repo, src)
    assert res.generation_id and res.files_read == 5
    assert any("files cache not saved" in w for w in res.warnings)
    monkeypatch.undo()
    # no cache was written: the next run reads everything again, and works
    assert backup(engine, repo, src).files_read == 5
