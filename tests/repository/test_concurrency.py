"""Concurrent writers, lock exclusion, stale locks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from freezer_ui.repository import LockError, Repository
from freezer_ui.repository.locks import LOCK_MAGIC, STALE_AFTER, Lock
from freezer_ui.storage import LocalStorage

from .conftest import backup_blob, make_repo, reopen, restore_blob, semi_random
from .crash_child import dataset
from .test_crash import CHILD, ROOT


def test_two_writer_processes(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path / "r"))
    make_repo(storage, "none")
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = [
        subprocess.Popen(
            [sys.executable, CHILD, storage.root, str(seed)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in (11, 12)
    ]
    outs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    repo = reopen(storage, "none")
    gens = {g.source: g.id for g in repo.generations()}
    assert set(gens) == {"11", "12"}
    for seed, gen_id in gens.items():
        restored = {
            i["path"]: b"".join(repo.read_chunks(bytes(c[0]) for c in i["chunks"]))
            for i in repo.open_generation(gen_id).items()
            if i["chunks"]
        }
        assert restored == dataset(int(seed))
    report = repo.verify()
    assert report.ok, report.errors


def test_concurrent_writer_threads(tmp_path: Path, encryption: str) -> None:
    storage = LocalStorage(str(tmp_path / "r"))
    make_repo(storage, encryption)
    shared = semi_random(200_000, 99)
    results: dict[int, tuple[str, dict[str, bytes]]] = {}
    barrier = threading.Barrier(3)

    def run(n: int) -> None:
        repo = reopen(storage, encryption)  # each writer its own Repository, like two hosts
        files = {"shared": shared, f"own{n}": semi_random(150_000, n)}
        barrier.wait()
        results[n] = (backup_blob(repo, files, name=f"w{n}"), files)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    repo = reopen(storage, encryption)
    for gen_id, files in results.values():
        assert restore_blob(repo, gen_id) == files
    assert repo.verify().ok
    assert len(repo.generations()) == 3


def test_prune_waits_for_writers(repo: Repository) -> None:
    repo.lock_timeout = 0.3
    with repo.writer():
        with pytest.raises(LockError, match="shared lock"):
            repo.prune()
    repo.prune()  # free again


def test_writer_waits_for_prune(repo: Repository) -> None:
    repo.lock_timeout = 0.3
    with repo.lock(exclusive=True):
        with pytest.raises(LockError, match="exclusive"):
            with repo.writer():
                pass
    with repo.writer() as w:
        w.commit({"backup_name": "x"}, [])


def test_shared_locks_coexist(repo: Repository) -> None:
    with repo.lock(), repo.lock(), repo.writer() as w:
        w.commit({"backup_name": "x"}, [])
    assert not list(repo.storage.list("locks/"))


def _put_lock(storage: LocalStorage, kind: str, hostname: str, pid: int, t: float) -> None:
    doc = {"kind": kind, "hostname": hostname, "pid": pid, "time": t}
    storage.put("locks/" + os.urandom(16).hex(), [LOCK_MAGIC + json.dumps(doc).encode()])


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_locks_are_broken(repo: Repository, storage: LocalStorage) -> None:
    repo.lock_timeout = 0.3
    _put_lock(storage, "exclusive", socket.gethostname(), _dead_pid(), time.time())
    _put_lock(storage, "exclusive", "other-host", 1, time.time() - STALE_AFTER - 10)
    with repo.writer() as w:  # both stale: removed, the writer proceeds
        w.commit({"backup_name": "x"}, [])
    assert not list(storage.list("locks/"))


def test_live_foreign_locks_block(repo: Repository, storage: LocalStorage) -> None:
    repo.lock_timeout = 0.3
    _put_lock(storage, "exclusive", "other-host", 1, time.time())
    with pytest.raises(LockError, match="other-host"):
        with repo.writer():
            pass
    storage.put("locks/" + "0" * 32, [b"garbage"])
    with pytest.raises(LockError, match="unreadable"):
        repo.prune()


def test_lock_refresh_replaces_object(storage: LocalStorage) -> None:
    lock = Lock(storage, exclusive=False).acquire()
    first = lock.key
    lock.refresh(force=True)
    assert lock.key != first and [o.key for o in storage.list("locks/")] == [lock.key]
    lock.release()
    assert not list(storage.list("locks/"))


def test_lock_is_refreshed_in_background(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from freezer_ui.repository import locks

    monkeypatch.setattr(locks, "REFRESH_EVERY", 0.02)
    lock = Lock(storage, exclusive=False).acquire()
    first = lock.key
    deadline = time.monotonic() + 30
    while lock.key == first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lock.key != first
    lock.release()
    assert not list(storage.list("locks/"))
