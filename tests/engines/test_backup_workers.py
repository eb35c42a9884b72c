"""The tar backup reads, hashes and seals files in worker processes (backup_workers): a dead
or failing worker fails the backup cleanly, deduplication stays exact, nothing is left
running."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest

from freezer_ui.engines.tar import backup as tb
from freezer_ui.engines.tar.backup_workers import START_ENV, WorkerError, start_method
from freezer_ui.progress import Progress
from freezer_ui.repository.format import parse_pack_key
from tests.engines.conftest import backup
from tests.engines.treeutil import diff, snapshot


def _children() -> set[int]:
    """Child processes of this process (any thread's), zombies included."""
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                out |= {int(p) for p in f.read().split()}
        except OSError:
            pass
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


@pytest.fixture(params=["fork", "exec"])
def start(request, monkeypatch) -> str:
    """Run the test with forked and with exec'ed workers (the backup picks it up from the
    environment: TarBackup passes no ``start``)."""
    monkeypatch.setenv(START_ENV, request.param)
    return request.param


def _inject(monkeypatch, tmp_path: Path, start: str, code: str) -> None:
    """Run ``code`` (it patches ``os`` functions) in the worker processes: here before the
    fork (inherited), or in an exec'ed worker's interpreter at its start (sitecustomize on
    the PYTHONPATH it inherits).  The patched functions are restored here afterwards."""
    for name in ("fstat", "read", "preadv"):
        monkeypatch.setattr(os, name, getattr(os, name))  # undone at the end of the test
    if start == "fork":
        exec(code, {})  # noqa: S102 - the test's own fault injection
        return
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", str(site))


def _cmdline(pid: int) -> str:
    """``pid``'s command line, or its ``stat`` line if it has none (a zombie)."""
    import time

    try:
        for _ in range(100):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode()
            if line:
                return line
            # (seen empty for a moment right after the exec, with the process running)
            with open(f"/proc/{pid}/stat") as f:
                line = f.read()[:40]
            if ") Z " in line:
                return line
            time.sleep(0.01)
        return line
    except OSError:
        return "gone"


def _workers_of(pids) -> list[str]:
    """Command lines of the processes ``pids``."""
    return [_cmdline(pid) for pid in pids]


def _tree(root: Path, files: int = 400, large: int = 3) -> None:
    rnd = random.Random(7)
    for i in range(files):
        d = root / f"d{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(rnd.randbytes(rnd.randrange(1, 6000)))
    for i in range(large):
        (root / f"big{i}").write_bytes(rnd.randbytes(300_000))


def _chunks_in_packs(repo) -> list[bytes]:
    out = []
    for obj in repo.storage.list("data/"):
        pack_id = parse_pack_key(obj.key)
        assert pack_id is not None
        out += [e.chunk_id for e in repo.read_pack_trailer(pack_id, obj.size)]
    return out


def _worker_pids(before: set[int]) -> list[int]:
    """The backup's worker processes: its children but the walk process (named, see
    walk_process), which is a child too."""
    return sorted(p for p in _children() - before if _comm(p) != "fzui-walk")


class _Killer(Progress):
    """Progress that SIGKILLs the backup's worker processes at the first advance after
    they started."""

    def __init__(self, which: str) -> None:
        super().__init__()
        self.which = which
        self.killed: list[int] = []

    def advance(self, bytes: int = 0, files: int = 0) -> None:  # noqa: A002
        pids = [] if self.killed else _worker_pids(self.before)
        if pids:  # (workers start with the first file to read, not before)
            if self.which == "one":
                pids = pids[:1]
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            self.killed = pids
        super().advance(bytes=bytes, files=files)


@pytest.mark.parametrize("which", ["one", "all"])
def test_killed_worker_fails_the_backup_cleanly(repo, engine, tmp_path: Path, which, start) -> None:
    src = tmp_path / "src"
    _tree(src)
    before = _children()
    progress = _Killer(which)
    progress.before = before
    with pytest.raises(WorkerError, match=r"backup worker process \d+ died \(killed by SIGKILL"):
        backup(engine, repo, str(src), progress=progress)
    assert progress.killed
    # no generation, the repository is valid, and no process is left (not even a zombie)
    assert repo.generation_ids() == []
    assert repo.verify().ok
    assert _children() - before == set()
    # the next run completes and restores the tree
    res = backup(engine, repo, str(src))
    assert res.warnings == []
    out = tmp_path / "out"
    engine.restore(repo, res.generation_id, str(out))
    assert diff(snapshot(str(src), atime=False), snapshot(str(out), atime=False)) == []


_FSTAT_BUG = """
import os
_real_fstat = os.fstat
def _broken(fd):
    if os.readlink(f"/proc/self/fd/{fd}").endswith("/f17"):
        raise RuntimeError("injected bug in the worker")
    return _real_fstat(fd)
os.fstat = _broken
"""


def test_failing_worker_reports_its_error(repo, engine, tmp_path: Path, monkeypatch, start) -> None:
    src = tmp_path / "src"
    _tree(src, files=50, large=0)
    before = _children()
    _inject(monkeypatch, tmp_path, start, _FSTAT_BUG)
    with pytest.raises(WorkerError, match="RuntimeError: injected bug in the worker"):
        backup(engine, repo, str(src))
    monkeypatch.undo()
    assert repo.generation_ids() == []
    assert _children() - before == set()


def test_no_process_left_after_a_backup(repo, engine, tmp_path: Path, start) -> None:
    src = tmp_path / "src"
    _tree(src, files=30)
    before = _children()
    backup(engine, repo, str(src))
    assert _children() - before == set()


def test_dedup_is_exact_across_workers(repo, engine, tmp_path: Path, start) -> None:
    """Identical files land in both workers at the same time: each chunk is stored once."""
    src = tmp_path / "src"
    src.mkdir()
    rnd = random.Random(3)
    small = rnd.randbytes(3000)
    large = rnd.randbytes(400_000)
    for i in range(200):
        (src / f"s{i:03d}").write_bytes(small)
    for i in range(6):
        (src / f"l{i}").write_bytes(large)
    res = backup(engine, repo, str(src))
    stored = _chunks_in_packs(repo)
    data_chunks = {
        bytes(c[0])
        for item in repo.open_generation(res.generation_id).items()
        for c in item.get("chunks", [])
    }
    assert len(stored) == len(set(stored))  # no chunk stored twice
    assert data_chunks <= set(stored)
    assert res.bytes_new == len(small) + len(large)


def test_workers_skip_what_the_repository_holds(repo, engine, tmp_path: Path, start) -> None:
    """Without a files cache every file is read again: nothing is stored a second time.
    Forked workers know the index they were forked with and do not even seal it; exec'ed
    ones seal it again and the writer drops every blob."""
    src = tmp_path / "src"
    _tree(src, files=100)
    first = backup(engine, repo, str(src))
    size = sum(o.size for o in repo.storage.list("data/"))
    again = tb.TarBackup(
        repo,
        str(src),
        backup_name="t",
        hostname="h",
        excludes=[],
        one_file_system=False,
        progress=None,
        cache_dir=None,
        use_cache=False,
    ).run()
    assert again.files_read == first.files_read and again.bytes_new == 0
    assert sum(o.size for o in repo.storage.list("data/")) == size


_APPEND_ONCE = """
import os
_target, _marker = {target!r}, {marker!r}
_real_read, _real_preadv = os.read, os.preadv

def _append_once(fd):
    if not os.path.exists(_marker) and os.readlink(f"/proc/self/fd/{{fd}}") == _target:
        with open(_marker, "w") as f:
            f.write("1")
        with open(_target, "ab") as f:  # another process appending while we read
            f.write(b"more")

def _read(fd, n):
    _append_once(fd)
    return _real_read(fd, n)

def _preadv(fd, buffers, off, *flags):
    _append_once(fd)
    return _real_preadv(fd, buffers, off, *flags)

os.read, os.preadv = _read, _preadv
"""


def test_file_growing_while_a_worker_reads_it(
    repo, engine, tmp_path: Path, monkeypatch, start
) -> None:
    """As tests/engines/test_warnings.py's growing-file test, with the append seen across
    the process boundary (a marker file instead of a list in this process)."""
    src = tmp_path / "src"
    src.mkdir()
    target = src / "log"
    target.write_bytes(b"x" * 100_000)
    marker = tmp_path / "grown"
    _inject(
        monkeypatch, tmp_path, start, _APPEND_ONCE.format(target=str(target), marker=str(marker))
    )
    res = backup(engine, repo, str(src))
    monkeypatch.undo()
    assert marker.exists()
    assert any("log: file changed while being backed up" in w for w in res.warnings)
    item = next(i for i in repo.open_generation(res.generation_id).items() if i["path"] == "log")
    assert item["size"] == sum(n for _, n in item["chunks"])
    again = backup(engine, repo, str(src))
    assert again.files_read == 1 and again.warnings == []


_KILLED_PARENT = r"""
import os, sys, time
from freezer_ui.engines.tar import TarEngine
from freezer_ui.progress import Progress
from freezer_ui.repository import Repository
from freezer_ui.storage import LocalStorage

class Announce(Progress):
    said = False
    def advance(self, bytes=0, files=0):
        if self.said:
            return super().advance(bytes=bytes, files=files)
        kids = set()
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/children") as f:
                    kids |= set(f.read().split())
            except FileNotFoundError:  # that thread ended meanwhile
                pass
        def comm(pid):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    return f.read().strip()
            except FileNotFoundError:  # reaped meanwhile
                return ""
        # workers start with the first file to read; the walk process is not one
        kids = [k for k in kids if comm(k) not in ("", "fzui-walk")]
        if kids:
            self.said = True
            print("workers", *sorted(kids), flush=True)
            time.sleep(30)  # killed here
        super().advance(bytes=bytes, files=files)

repo = Repository.open(LocalStorage(sys.argv[1]))
TarEngine(cache_dir=sys.argv[3]).backup(
    repo, sys.argv[2], backup_name="b", hostname="h", excludes=[], one_file_system=False,
    progress=Announce())
"""


def test_workers_die_with_a_killed_backup(repo, tmp_path: Path, start) -> None:
    """SIGKILL of the backup process (no cleanup runs) leaves no worker behind."""
    import subprocess
    import sys
    import time

    src = tmp_path / "src"
    _tree(src, files=200)
    root = str(Path(__file__).resolve().parents[2])
    p = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PARENT, repo.storage.root, str(src), str(tmp_path / "c")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=root),  # START_ENV is set there too
    )
    assert p.stdout is not None
    line = p.stdout.readline().split()
    assert line and line[0] == "workers", line
    pids = [int(x) for x in line[1:]]
    assert pids
    if start == "exec":
        assert all("-m freezer_ui.engines.tar.backup_workers" in c for c in _workers_of(pids))
    p.kill()
    p.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)]
    assert repo.generation_ids() == [] and repo.verify().ok


def test_concurrent_backups_in_one_process(tmp_path: Path, start) -> None:
    """Two backups at once in one process (the agent runs jobs in threads): the second
    one's workers must not hold the first one's pipes, or the first one's workers would
    never see the end of their jobs and would have to be killed."""
    import threading

    from freezer_ui.repository import Repository
    from freezer_ui.storage import LocalStorage
    from tests.engines.conftest import SMALL_CHUNKER

    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()

    class Gate(Progress):
        """At its first step: says so, then waits for ``other``: a ends while b's workers
        are alive (forked while a's were)."""

        def __init__(self, mine: threading.Event, other: threading.Event) -> None:
            super().__init__()
            self.mine, self.other = mine, other

        def advance(self, bytes: int = 0, files: int = 0) -> None:  # noqa: A002
            if not self.mine.is_set():
                self.mine.set()
                assert self.other.wait(30)
            super().advance(bytes=bytes, files=files)

    runs: dict[str, tb.TarBackup] = {}
    errors: list[BaseException] = []

    def run(name: str, progress: Progress) -> None:
        try:
            storage = LocalStorage(str(tmp_path / f"repo-{name}"))
            Repository.init(storage, None, "none", chunker=SMALL_CHUNKER, pack_size=1 << 20)
            src = tmp_path / f"src-{name}"
            _tree(src, files=150)
            t = tb.TarBackup(
                Repository.open(storage),
                str(src),
                backup_name=name,
                hostname="h",
                excludes=[],
                one_file_system=False,
                progress=progress,
                cache_dir=str(tmp_path / "cache"),
            )
            runs[name] = t
            t.run()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            if name == "a":
                a_done.set()

    before = _children()
    ta = threading.Thread(target=run, args=("a", Gate(a_in, b_in)))
    ta.start()
    assert a_in.wait(30)  # a's workers are running
    tb_ = threading.Thread(target=run, args=("b", Gate(b_in, a_done)))
    tb_.start()
    ta.join(60)
    tb_.join(60)
    assert not errors
    for t in runs.values():
        # every worker ended on its own when its job pipe closed (0), none was killed
        assert [w.status for w in t._workers.workers] == [0] * len(t._workers.workers)
    assert _children() - before == set()


def test_worker_forgetting_what_it_sent_costs_no_bytes(repo, engine, tmp_path, monkeypatch) -> None:
    """With the worker's memory of sent chunks cut to one id, repeats are sealed again and
    dropped by the writer: stored bytes stay the same.  Forked workers only: the limit is
    patched in this process (an exec'ed worker runs the same _serve)."""
    monkeypatch.setenv(START_ENV, "fork")
    from freezer_ui.engines.tar import backup_workers

    src = tmp_path / "src"
    src.mkdir()
    rnd = random.Random(5)
    blocks = [rnd.randbytes(2000) for _ in range(5)]
    for i in range(100):
        (src / f"f{i:03d}").write_bytes(blocks[i % 5])
    monkeypatch.setattr(backup_workers, "EMITTED_MAX", 1)
    res = backup(engine, repo, str(src))
    stored = _chunks_in_packs(repo)
    assert len(stored) == len(set(stored)) == 5 + 1  # the 5 blocks and the item stream
    assert res.bytes_new == sum(map(len, blocks)) and res.chunks_new == 5


def test_start_method_rule(monkeypatch) -> None:
    """fork only while this process runs one thread; the environment or the caller can force
    either; anything else is refused with the accepted values."""
    import threading

    monkeypatch.delenv(START_ENV, raising=False)
    with monkeypatch.context() as m:
        # (the suite's process may still run other tests' threads: the rule is what counts)
        m.setattr(threading, "active_count", lambda: 1)
        assert start_method() == "fork"
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert start_method() == "exec"
        assert start_method("fork") == "fork"
        # an interpreter this process may not run: fork as before rather than fail
        import sys

        monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
        assert start_method() == "fork"
        assert start_method("exec") == "exec"  # (forced: fails when started, see below)
        monkeypatch.undo()
    finally:
        stop.set()
        t.join()
    monkeypatch.setenv(START_ENV, "exec")
    assert start_method() == "exec"
    monkeypatch.setenv(START_ENV, "spawn")
    with pytest.raises(WorkerError, match=f"{START_ENV}='spawn': expected one of fork, exec"):
        start_method()
    with pytest.raises(WorkerError, match="expected one of fork, exec"):
        start_method("vfork")


class _Seen(Progress):
    """Progress that records the command lines of the backup's child processes."""

    def __init__(self, before: set[int]) -> None:
        super().__init__()
        self.before = before
        self.cmdlines: dict[int, str] = {}

    def advance(self, bytes: int = 0, files: int = 0) -> None:  # noqa: A002
        if not self.cmdlines:
            self.cmdlines = {pid: _cmdline(pid) for pid in _worker_pids(self.before)}
        super().advance(bytes=bytes, files=files)


def _run(repo, src: Path, tmp_path: Path, progress=None, use_cache: bool = True):
    t = tb.TarBackup(
        repo,
        str(src),
        backup_name="t",
        hostname="h",
        excludes=[],
        one_file_system=False,
        progress=progress,
        cache_dir=str(tmp_path / "cache"),
        use_cache=use_cache,
    )
    return t, t.run()


def test_backup_beside_another_thread_execs_its_workers(
    repo, engine, tmp_path: Path, monkeypatch
) -> None:
    """A backup started while another thread runs (the agent) uses exec'ed workers; they
    store the same generation as forked ones, and it restores to the source."""
    import threading

    monkeypatch.delenv(START_ENV, raising=False)
    src = tmp_path / "src"
    _tree(src, files=300, large=4)
    before = _children()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="agent-like")
    other.start()
    try:
        seen = _Seen(before)
        t, res = _run(repo, src, tmp_path, progress=seen)
    finally:
        stop.set()
        other.join()
    assert t._workers.start == "exec"
    assert len(t._workers.pids) == 2
    for pid in t._workers.pids:
        assert "-P -m freezer_ui.engines.tar.backup_workers" in seen.cmdlines[pid], seen.cmdlines
    assert [w.status for w in t._workers.workers] == [0, 0]
    assert _children() - before == set()
    out = tmp_path / "out"
    engine.restore(repo, res.generation_id, str(out))
    assert diff(snapshot(str(src), atime=False), snapshot(str(out), atime=False)) == []
    # The same tree with forked workers, every file read again (no files cache): the same
    # items (chunk ids, sizes, metadata) and nothing new to store.
    monkeypatch.setenv(START_ENV, "fork")
    t2, forked = _run(repo, src, tmp_path, use_cache=False)
    assert t2._workers.start == "fork"
    assert forked.files_read == res.files_read and forked.bytes_new == 0
    exec_items = list(repo.open_generation(res.generation_id).items())
    fork_items = list(repo.open_generation(forked.generation_id).items())
    assert len(exec_items) > 300 and exec_items == fork_items
    assert repo.verify().ok


def test_exec_workers_seal_with_the_repository_keys(tmp_path: Path, monkeypatch) -> None:
    """An encrypted repository: the exec'ed workers got the id and encryption keys over
    their pipe (no passphrase); the backup verifies and restores to the source."""
    from freezer_ui.engines.tar import TarEngine
    from freezer_ui.repository import Repository
    from freezer_ui.storage import LocalStorage
    from tests.engines.conftest import SMALL_CHUNKER

    monkeypatch.setenv(START_ENV, "exec")
    storage = LocalStorage(str(tmp_path / "repo"))
    Repository.init(storage, "pw", chunker=SMALL_CHUNKER, pack_size=1 << 20, scrypt_n=2)
    repo = Repository.open(storage, "pw")
    assert repo.encrypted
    src = tmp_path / "src"
    _tree(src, files=120, large=2)
    engine = TarEngine(cache_dir=str(tmp_path / "cache"))
    res = backup(engine, repo, str(src))
    assert res.files_read > 120 and res.bytes_new > 0
    assert Repository.open(storage, "pw").verify().ok
    out = tmp_path / "out"
    engine.restore(Repository.open(storage, "pw"), res.generation_id, str(out))
    assert diff(snapshot(str(src), atime=False), snapshot(str(out), atime=False)) == []


def _sealed_counter(monkeypatch) -> dict[str, int]:
    """Counts, in the backup process, the chunks workers sent sealed and those they said
    are stored (the real _on_chunk runs)."""
    counts = {"sealed": 0, "known": 0}
    real = tb.TarBackup._on_chunk

    def on_chunk(self, job, cid, size, blob):
        counts["known" if blob is None else "sealed"] += 1
        return real(self, job, cid, size, blob)

    monkeypatch.setattr(tb.TarBackup, "_on_chunk", on_chunk)
    return counts


def _cached_repo(tmp_path: Path):
    from freezer_ui.repository import Repository
    from freezer_ui.storage import LocalStorage
    from tests.engines.conftest import SMALL_CHUNKER

    storage = LocalStorage(str(tmp_path / "repo"))
    if not storage.exists("config"):
        Repository.init(storage, None, "none", chunker=SMALL_CHUNKER, pack_size=1 << 20)

    def opened():
        r = Repository.open(storage)
        r.use_index_cache(str(tmp_path / "index-cache"))  # as the CLI and the agent do
        return r

    return opened


def test_exec_workers_know_the_index_cache(tmp_path: Path, monkeypatch) -> None:
    """Exec'ed workers have no copy of the writer's index, but they open the local index
    cache it was built on: a re-read of stored files seals nothing."""
    monkeypatch.setenv(START_ENV, "exec")
    opened = _cached_repo(tmp_path)
    src = tmp_path / "src"
    _tree(src, files=200)
    r = opened()
    first = _run(r, src, tmp_path)[1]
    r.save_index_cache()  # as the CLI and the agent do after a backup
    counts = _sealed_counter(monkeypatch)
    repo = opened()
    t, again = _run(repo, src, tmp_path, use_cache=False)
    assert repo.index.cached is not None  # the writer's index was the cache file
    assert t._workers.start == "exec"
    assert again.files_read == first.files_read and again.bytes_new == 0
    assert counts["sealed"] == 0 and counts["known"] > 200


def test_exec_workers_ignore_an_index_cache_replaced_meanwhile(tmp_path: Path, monkeypatch) -> None:
    """Another backup replaces the index cache between our writer's load and our workers'
    start, with chunks our writer does not know: the workers must not take it (a chunk
    they called stored would fail the backup), so they seal, and the backup completes."""
    from freezer_ui.engines.tar import backup_workers as bw

    monkeypatch.setenv(START_ENV, "exec")
    opened = _cached_repo(tmp_path)
    base = tmp_path / "base"
    _tree(base, files=40, large=0)
    r = opened()
    _run(r, base, tmp_path)
    r.save_index_cache()
    src = tmp_path / "src"
    _tree(src, files=150)  # (its own random content: the same tree twice below)
    (src / "unique").write_bytes(os.urandom(50_000))
    real = bw.Workers._prepare_exec
    other: list = []

    def prepare(self, repo) -> None:
        if not other:  # the first call is ours: the other backup runs to its end here
            other.append(None)
            r = opened()
            other[0] = _run(r, src, tmp_path / "other")[1]
            r.save_index_cache()
        real(self, repo)

    monkeypatch.setattr(bw.Workers, "_prepare_exec", prepare)
    counts = _sealed_counter(monkeypatch)
    repo = opened()
    t, res = _run(repo, src, tmp_path)
    assert other[0].bytes_new > 0  # the other backup stored src's chunks first
    assert repo.index.cached is not None
    assert counts["sealed"] > 0
    assert res.warnings == [] and repo.verify().ok
    out = tmp_path / "out"
    from freezer_ui.engines.tar import TarEngine

    TarEngine().restore(opened(), res.generation_id, str(out))
    assert diff(snapshot(str(src), atime=False), snapshot(str(out), atime=False)) == []


def test_exec_that_cannot_start_fails_clearly(repo, engine, tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setenv(START_ENV, "exec")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    src = tmp_path / "src"
    _tree(src, files=10, large=0)
    before = _children()
    with pytest.raises(WorkerError, match=r"cannot start a backup worker process \(.*no-python\)"):
        backup(engine, repo, str(src))
    assert repo.generation_ids() == []
    assert _children() - before == set()


def test_an_unchanged_run_starts_no_worker_process(repo, tmp_path: Path) -> None:
    """Workers start with the first file to read: an unchanged run (every file answered by
    the files cache) starts none, and a run with one changed file starts them for it."""
    import time

    src = tmp_path / "src"
    _tree(src, files=50, large=0)
    time.sleep(1.1)  # changed (ctime) within the second before a backup: never cached
    t, first = _run(repo, src, tmp_path)
    assert t._workers is not None and first.files_read == 50
    t, again = _run(repo, src, tmp_path)
    assert t._workers is None
    assert again.files_read == 0 and again.files_from_cache == 50 and again.bytes_new == 0
    (src / "d3" / "f3").write_bytes(b"changed")
    time.sleep(1.1)
    t, changed = _run(repo, src, tmp_path)
    assert t._workers is not None and changed.files_read == 1
