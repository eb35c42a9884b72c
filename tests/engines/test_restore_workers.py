"""The restore's worker processes (restore_workers.py): forced on for small trees here.

Real processes, real sockets, a real repository: a round trip through both ways of starting
workers, a corrupt chunk, a killed worker and an interrupt, each checking that no worker
process is left behind (running, zombie or orphan).
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest

from freezer_ui.engines.tar import restore as restore_mod
from freezer_ui.engines.tar.restore_workers import RestoreWorkerError, WorkerPool, can_fork
from freezer_ui.progress import Progress
from freezer_ui.repository import CorruptData, MissingChunk, Repository
from freezer_ui.repository.format import pack_key
from freezer_ui.storage import LocalStorage
from tests.engines.conftest import SMALL_CHUNKER, backup
from tests.engines.treeutil import build_sample_tree, diff, make_sparse, snapshot


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[WorkerPool]:
    """Worker processes for every restore, however small; the pools started are recorded."""
    started: list[WorkerPool] = []

    class Recorded(WorkerPool):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            started.append(self)

    monkeypatch.setattr(restore_mod, "WorkerPool", Recorded)
    monkeypatch.setattr(restore_mod, "PROCESS_MIN_FILES", 0)
    monkeypatch.setattr(restore_mod, "PROCESS_MIN_BYTES", 0)
    # Small batches: many hand-offs, both workers busy, several batches in flight.
    monkeypatch.setattr(restore_mod, "BATCH_FILES", 7)
    return started


@pytest.fixture
def alarm():
    """A hang fails the test instead of blocking the suite."""

    def timeout(*_a) -> None:
        raise TimeoutError("restore hung")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def children() -> set[int]:
    out: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                out.update(int(p) for p in f.read().split())
        except FileNotFoundError:  # that thread ended meanwhile
            pass
    return out


def assert_no_worker_left(pools: list[WorkerPool]) -> None:
    assert pools, "the restore did not use worker processes"
    pids = {w.pid for p in pools for w in p.workers}
    assert len(pids) == 2
    assert all(w.reaped for p in pools for w in p.workers)
    assert not pids & children()  # neither running nor a zombie child of ours
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")


def many_files_tree(root: str, n: int = 400) -> None:
    """build_sample_tree (hard link, sparse file, xattr, fifo, symlinks) plus many small
    files, more hard links, a multi-chunk file and a second sparse file."""
    build_sample_tree(root)
    rnd = random.Random(5)
    for i in range(n):
        d = os.path.join(root, "many", f"d{i % 13}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"f{i}")
        with open(p, "wb") as f:
            f.write(rnd.randbytes(rnd.randrange(0, 9000)))
        os.chmod(p, 0o600 + (i % 3) * 0o40)
        os.utime(p, ns=(1_600_000_000_000_000_000 + i, 1_500_000_000_000_000_000 + i * 7))
        if i % 37 == 0:
            os.link(p, os.path.join(root, "many", f"link{i}"))
    with open(os.path.join(root, "multi.bin"), "wb") as f:
        f.write(rnd.randbytes(2_000_000))
    make_sparse(os.path.join(root, "many", "holes.img"), 8 << 20, [(1 << 20, b"z" * 70_000)])


@pytest.mark.parametrize("encryption", ["none", "aes-256-gcm"])
@pytest.mark.parametrize("start", ["fork", "exec"])
def test_round_trip_through_worker_processes(
    engine, tmp_path: Path, pools, alarm, monkeypatch, start, encryption
) -> None:
    if start == "fork" and not can_fork():
        pytest.skip("another thread runs in this test process: forking would not be safe")
    monkeypatch.setattr(restore_mod, "START", start)
    # exec'ed workers get the keys over their socket; forked ones inherit them
    storage = LocalStorage(str(tmp_path / "repo"))
    pw = "pw" if encryption != "none" else None
    Repository.init(
        storage, pw, encryption, chunker=SMALL_CHUNKER, pack_size=1 << 20, scrypt_n=1 << 10
    )
    repo = Repository.open(storage, pw)
    src = str(tmp_path / "src")
    many_files_tree(src)
    before = snapshot(src)
    gen = backup(engine, repo, src)
    assert gen.warnings == []
    progress = Progress()
    out = str(tmp_path / "out")
    res = engine.restore(repo, gen.generation_id, out, progress=progress)
    assert res.rejected == [] and res.warnings == []
    assert diff(before, snapshot(out)) == []
    assert os.stat(os.path.join(out, "many/holes.img")).st_blocks * 512 < 1 << 20
    assert res.bytes_written == sum(
        sum(n for _, n in i.get("chunks") or [])
        for i in repo.open_generation(gen.generation_id).items()
        if i["type"] == "file"
    )
    snap = progress.snapshot()
    assert snap.files_done == res.files and snap.bytes_done == gen.bytes_total
    assert_no_worker_left(pools)


def test_corrupt_chunk_fails_the_restore_naming_pack_and_offset(
    repo, engine, tmp_path: Path, pools, alarm
) -> None:
    src = str(tmp_path / "src")
    many_files_tree(src)
    gid = backup(engine, repo, src).generation_id
    item = next(i for i in repo.open_generation(gid).items() if i["path"] == "many/d5/f200")
    cid = item["chunks"][0][0]
    pack_id, offset, length, _size = repo.index.by_chunk[cid]
    path = os.path.join(repo.storage.root, *pack_key(pack_id).split("/"))
    with open(path, "r+b") as f:
        f.seek(offset + length // 2)
        b = f.read(1)
        f.seek(offset + length // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    fresh = Repository.open(LocalStorage(repo.storage.root, create=False))
    with pytest.raises(CorruptData) as direct:
        fresh.read_chunk(cid)
    assert f"[{pack_key(pack_id)} @ {offset}]" in str(direct.value)
    with pytest.raises(CorruptData) as failed:
        engine.restore(fresh, gid, str(tmp_path / "out"))
    assert str(failed.value) == str(direct.value)
    assert failed.value.key == pack_key(pack_id) and failed.value.offset == offset
    assert_no_worker_left(pools)


class _Hook(Progress):
    """Calls ``action`` once, at the ``at``-th file the walk creates."""

    def __init__(self, at: int, action) -> None:
        super().__init__()
        self.at, self.action, self.n = at, action, 0

    def advance(self, bytes: int = 0, files: int = 0) -> None:  # noqa: A002 - contract name
        super().advance(bytes=bytes, files=files)
        self.n += 1
        if self.n == self.at:
            self.action()


def test_killed_worker_is_reported_not_waited_for(
    repo, engine, tmp_path: Path, pools, alarm
) -> None:
    src = str(tmp_path / "src")
    many_files_tree(src)
    gid = backup(engine, repo, src).generation_id

    def kill_one() -> None:
        os.kill(pools[0].workers[1].pid, signal.SIGKILL)

    with pytest.raises(RestoreWorkerError, match="killed by signal 9"):
        engine.restore(repo, gid, str(tmp_path / "out"), progress=_Hook(60, kill_one))
    assert_no_worker_left(pools)


def test_interrupt_reaps_the_workers(repo, engine, tmp_path: Path, pools, alarm) -> None:
    src = str(tmp_path / "src")
    many_files_tree(src)
    gid = backup(engine, repo, src).generation_id

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.restore(repo, gid, str(tmp_path / "out"), progress=_Hook(100, interrupt))
    assert_no_worker_left(pools)


def test_missing_chunk_fails_the_restore_as_read_chunk_does(
    repo, engine, tmp_path: Path, pools, alarm
) -> None:
    src = str(tmp_path / "src")
    many_files_tree(src)
    gid = backup(engine, repo, src).generation_id
    gen = repo.open_generation(gid)
    meta_packs = {repo.index.by_chunk[cid][0] for cid, _ in gen.item_chunks}
    cid = next(
        c
        for i in gen.items()
        for c, _n in i.get("chunks") or []
        if repo.index.by_chunk[c][0] not in meta_packs
    )
    # The pack is lost from storage: its chunks count as absent after the index reload.
    os.unlink(os.path.join(repo.storage.root, *pack_key(repo.index.by_chunk[cid][0]).split("/")))
    fresh = Repository.open(LocalStorage(repo.storage.root, create=False))
    with pytest.raises(MissingChunk) as direct:
        fresh.read_chunk(cid)
    with pytest.raises(MissingChunk) as failed:
        engine.restore(fresh, gid, str(tmp_path / "out"))
    assert str(failed.value).startswith("chunk ") and "is not in the repository" in str(
        failed.value
    )
    assert str(direct.value) == f"chunk {cid.hex()} is not in the repository"
    assert_no_worker_left(pools)
