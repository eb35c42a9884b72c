"""Worker processes that read, cut, hash, compress and seal file contents for the tar backup.

Why processes: on the benchmark corpus (68k files, 1.5 GB) the first backup spent ~20 s of
CPU, two thirds of it in reading, hashing and zstd.  Done in threads, every read, hash and
compression releases and re-takes the interpreter lock, and the thread that walks the tree
and feeds the writer waited for it at each hand-over (py-spy: the feeding thread waited
~12 s of a 24 s run on futures and queues while neither core was busy).  A worker process
has a lock of its own: it opens a file, reads it, cuts it (FastCDC for large files),
hashes and seals each chunk one after the other, and sends the sealed blobs back in one
message per batch of files (or per chunk of a large file, so progress moves per chunk).

Deduplication stays exact: a worker only skips sealing a chunk that it knows is stored
(a forked worker: the session's index as it was at the fork; any worker: a chunk it sent
itself earlier, which this process has handled before reading the skip); everything else is
sealed and this process (:meth:`Writer.add_sealed`) decides what is new, dropping a blob
another worker already delivered.  So stored bytes do not change; only a chunk two workers
meet at about the same time is compressed twice.

Workers are started after the writer has loaded the index and before the backup starts any
thread of its own; they use only their own pipes, the files they read and the repository's
keys.  They are forked while this process runs a single thread.  The agent runs backups
while its own threads run (progress reports, HTTP to freezer-api), and a lock another thread
holds at a fork stays held in the child forever: then each worker is a fresh interpreter
(``python -P -m freezer_ui.engines.tar.backup_workers``) that gets the repository's config
and keys as the first message on its job pipe and serves the same protocol (see
:func:`_exec_main`; the choice: :func:`start_method`).

A worker that dies (killed, out of memory) makes the backup fail with
:class:`WorkerError`; the writer is then aborted like any failed session (no generation,
uploaded packs adopted by the next session).  Workers exit when their job pipe closes, when
the process that started them dies (``PR_SET_PDEATHSIG``), and are killed and reaped by
:meth:`Workers.close` in every case.
"""

from __future__ import annotations

import errno
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

import msgpack  # type: ignore[import-untyped]

from freezer_ui.engines.base import EngineError
from freezer_ui.engines.tar.restore_workers import can_fork
from freezer_ui.engines.tar.walk import read_xattrs
from freezer_ui.repository.chunker import cdc_views
from freezer_ui.repository.crypto import BLOB_CHUNK

_O_NOATIME = getattr(os, "O_NOATIME", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

# A worker sends what it has once this many sealed bytes are waiting (about one chunk of a
# large file: the progress of a disk image moves per chunk) or at the end of a job batch.
SEND_BYTES = 1 << 20
# Small files per job message, and their bytes: one message (and one wake-up of the worker)
# per batch instead of per file.
BATCH_FILES = 64
BATCH_BYTES = 1 << 20
# Pipe buffers: job messages this process has sent and the worker has not finished stay
# below half the job pipe's size, so a send never blocks while the worker waits for us to
# read its results (that would be a deadlock).
PIPE_SIZE = 1 << 20
# Chunk ids a worker remembers having sent (~100 bytes each): bounded, so a worker of a
# backup of millions of chunks does not grow by gigabytes.
EMITTED_MAX = 1 << 18
_F_SETPIPE_SZ = 1031
_F_GETPIPE_SZ = 1032
_PR_SET_PDEATHSIG = 1

# result message header: length of the msgpack records, length of the blobs after them
_HEAD = struct.Struct("<II")
_fadvise = getattr(os, "posix_fadvise", None)
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", 3)

# The parent's ends of every live worker's pipes in this process (several backups may run
# in one agent process).  A forked worker closes its copies: a worker holding another
# worker's job pipe would keep that one from ever seeing EOF.  The lock keeps a fork from
# copying ends that are being created or closed meanwhile.
_FORK_LOCK = threading.Lock()
_OPEN_ENDS: set[Connection] = set()

# How workers start when the caller does not say: "fork" or "exec" (an operator's way around a
# library that misbehaves after a fork, and the benchmark's way to compare the two).
START_ENV = "FREEZER_UI_BACKUP_WORKERS_START"
STARTS = ("fork", "exec")

# end-of-file record statuses
OK, CANNOT_OPEN, READ_ERROR = 0, 1, 2


class WorkerError(EngineError):
    """A backup worker process failed or died: the backup cannot complete."""


class _Limited:
    """A read-only stream over ``length`` bytes of ``fd`` starting at ``offset``."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd, self.pos, self.left = fd, offset, length

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if n is None or n < 0 or n > self.left:
            n = self.left
        data = os.pread(self.fd, n, self.pos)
        self.pos += len(data)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    def readinto(self, b: Any) -> int:
        # straight into the chunker's buffer: no intermediate bytes object to copy
        if self.left <= 0:
            return 0
        view = memoryview(b)
        if len(view) > self.left:
            view = view[: self.left]
        n = os.preadv(self.fd, [view], self.pos)
        self.pos += n
        self.left -= n
        if not n:
            self.left = 0
        return n

    def readable(self) -> bool:
        return True


def data_extents(fd: int, size: int) -> list[list[int]] | None:
    """``[[offset, length], ...]`` of the data regions of a sparse file, or ``None`` if the file
    is one data region (or the file system cannot tell)."""
    extents: list[list[int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # only a hole remains
                    break
                raise
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            extents.append([start, end - start])
            pos = end
    except OSError:
        return None
    if len(extents) == 1 and extents[0] == [0, size]:
        return None
    return extents


def open_for_read(path: str | bytes) -> int:
    try:
        return os.open(path, _READ_FLAGS | _O_NOATIME)
    except PermissionError:
        # O_NOATIME is only allowed for the file's owner (or root).
        return os.open(path, _READ_FLAGS)


class _XattrEvents:
    """Stands in for the backup's ``WalkWarnings`` inside a worker: xattr errors are sent
    back raw and replayed there, so "not readable on this device" is still said once per
    device for the whole backup, not once per worker."""

    def __init__(self) -> None:
        self.events: list[list[Any]] = []

    def xattr_error(self, rel: str, dev: int, e: OSError) -> None:
        self.events.append([dev, e.errno or 0, e.strerror or str(e)])

    def add(self, msg: str) -> None:  # read_xattrs only reports through xattr_error
        self.events.append([-1, 0, msg])


# --- the worker process ----------------------------------------------------------------------


def _write_all(fd: int, parts: list[bytes]) -> None:
    """``writev`` until every byte is written (a pipe may take part of it)."""
    while parts:
        n = os.writev(fd, parts[:1024])
        while parts and n >= len(parts[0]):
            n -= len(parts[0])
            parts = parts[1:] if len(parts) > 1 else []
        if n:
            parts = [memoryview(parts[0])[n:], *parts[1:]]  # type: ignore[list-item]


def _read_exact(fd: int, n: int) -> bytearray:
    """``n`` bytes from a pipe, read straight into one buffer; EOFError if it closes."""
    buf = bytearray(n)
    view = memoryview(buf)
    pos = 0
    while pos < n:
        got = os.readv(fd, [view[pos:]])
        if not got:
            raise EOFError
        pos += got
    return buf


class _Sender:
    """Collects a worker's records and sealed blobs; one message per :meth:`send`.

    Message: ``_HEAD`` (lengths), the msgpack records, then the blobs back to back, written
    with one ``writev`` (no joined copy).  Records: ``[cid, size, blob length]`` per chunk
    (blob length 0: stored already) and ``[status, ...]`` (a list starting with an int) at
    the end of each file."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.records: list[Any] = []
        self.blobs: list[bytes] = []
        self.nbytes = 0

    def send(self) -> None:
        if not self.records:
            return
        meta = msgpack.packb(self.records, use_bin_type=True)
        _write_all(self.fd, [_HEAD.pack(len(meta), self.nbytes), meta, *self.blobs])
        self.records = []
        self.blobs = []
        self.nbytes = 0


def _serve(
    jobs: Connection, results: Connection, repo: Any, known: Callable[[bytes], bool]
) -> None:
    """The worker's loop: one job message (a list of files) at a time, in order."""
    envelope = repo.envelope
    chunk_id = repo.chunk_id
    params = repo.chunker_params
    small_max = params.min
    emitted: set[bytes] = set()
    out = _Sender(results.fileno())

    def chunk(data: bytes | memoryview) -> None:
        cid = chunk_id(data)
        if cid in emitted or known(cid):
            out.records.append([cid, len(data), 0])
            return
        blob = envelope.seal(BLOB_CHUNK, cid, data)
        if len(emitted) >= EMITTED_MAX:
            # only saves sealing a repeat twice: forgetting costs CPU, never bytes (the
            # backup process drops a blob it already has)
            emitted.clear()
        emitted.add(cid)
        out.records.append([cid, len(data), len(blob)])
        out.blobs.append(blob)
        out.nbytes += len(blob)
        if out.nbytes >= SEND_BYTES:
            out.send()

    while True:
        try:
            msg = jobs.recv_bytes()
        except EOFError:
            return  # the backup closed our pipe (done or aborted), or it died
        batch = msgpack.unpackb(msg)
        # Open the batch's files first and ask the kernel to read the small ones ahead: with
        # cold caches the reads then overlap on the disk instead of waiting one by one
        # (profile: the read of small files was ~1/3 of a worker's time).
        opened: list[int | OSError] = []
        for path, _dev, size, _blocks, large in batch:
            try:
                fd = open_for_read(path)
            except OSError as e:
                opened.append(e)
                continue
            opened.append(fd)
            if not large and size > 0 and _fadvise is not None:
                try:
                    _fadvise(fd, 0, 0, _WILLNEED)
                except OSError:
                    pass
        for (_path, dev, size, blocks, large), fd in zip(batch, opened, strict=True):
            events = _XattrEvents()
            if isinstance(fd, OSError):
                out.records.append([CANNOT_OPEN, fd.errno or 0, fd.strerror or str(fd)])
                continue
            try:
                extents = None
                if not large:
                    data = os.read(fd, small_max + 1)
                    if data:
                        chunk(data)
                else:
                    if size > 0 and blocks * 512 < size:
                        extents = data_extents(fd, size)
                    spans = [(0, 1 << 62)] if extents is None else extents
                    for off, length in spans:
                        for view in cdc_views(_Limited(fd, off, length), params):
                            chunk(view)
                xattrs = read_xattrs(fd, "", dev, events)  # type: ignore[arg-type]
                end = os.fstat(fd)
            except OSError as e:
                out.records.append([READ_ERROR, e.errno or 0, e.strerror or str(e)])
                continue
            finally:
                os.close(fd)
            out.records.append(
                [OK, extents, xattrs, end.st_ino, end.st_size, end.st_mtime_ns, events.events]
            )
        out.send()


def _child(
    jobs: Connection,
    results: Connection,
    close: list[Connection],
    load: Callable[[], tuple[Any, Callable[[bytes], bool]]],
) -> None:
    """Runs in the worker process (forked or exec'ed); never returns (``os._exit``).
    ``load`` gives the repository (keys, chunker) and what counts as stored."""
    code = 0
    try:
        # Ctrl-C goes to the whole process group: the backup process decides and kills us.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with_parent()
        for c in close:  # the other workers' pipe ends: they must see EOF when we go
            c.close()
        repo, known = load()
        _serve(jobs, results, repo, known)
    except EOFError:
        pass  # the backup closed our job pipe before sending the setup: nothing to do
    except BaseException:  # noqa: BLE001 - reported to the backup, which raises it
        code = 1
        try:
            _write_all(results.fileno(), [_fatal_message(traceback.format_exc())])
        except BaseException:  # noqa: BLE001, S110 - the backup sees EOF instead
            pass
    finally:
        os._exit(code)


class _NoStorage:
    """The storage of an exec'ed worker's repository: a worker only hashes, cuts and seals,
    so any use of storage is a bug, said as such instead of an AttributeError on ``None``."""

    def __getattr__(self, name: str) -> Any:
        raise WorkerError(f"a backup worker process has no storage (it asked for {name!r})")


def _exec_main(argv: list[str]) -> None:
    """Entry of an exec'ed worker: ``JOB_FD RESULT_FD PARENT_PID``.

    The first message on the job pipe is ``pickle((config, keys, index fd, expect))`` (see
    :meth:`Workers._prepare_exec`).  Pickle is fine: both ends are this program, and the
    pipe is private to the two processes.  Then the worker serves the same protocol as a
    forked one."""
    from freezer_ui.repository.repository import Repository

    job_fd, result_fd, parent = (int(a) for a in argv)
    jobs = Connection(job_fd, readable=True, writable=False)
    results = Connection(result_fd, readable=False, writable=True)

    def load() -> tuple[Any, Callable[[bytes], bool]]:
        if os.getppid() != parent:
            # The backup died before PR_SET_PDEATHSIG was set (the signal would never come);
            # its end of the job pipe is closed, so this read ends in EOF anyway.
            raise EOFError
        config, keys, index_fd, expect = pickle.loads(jobs.recv_bytes())
        # Repository's own chunk_id, envelope and chunker params, so ids and blobs are
        # exactly those of the backup process (same code path, not a copy of it).
        repo = Repository(_NoStorage(), config, keys)  # type: ignore[arg-type]
        known = _known_from_cache(index_fd, expect) if index_fd is not None else None
        return repo, known or _knows_nothing

    _child(jobs, results, [], load)


def _knows_nothing(cid: bytes) -> bool:
    return False


def _known_from_cache(fd: int, expect: tuple) -> Callable[[bytes], bool] | None:
    """What an exec'ed worker treats as stored: the chunks of the local index cache file the
    writer's index was built on (besides the chunks it sent itself, see _serve), or ``None``.

    A worker must never claim a chunk the writer does not hold: ``add_sealed(cid, size,
    None)`` fails the backup.  The cache file can be replaced between the writer's load and
    ours (another backup saving it, another client), so the file, opened by the backup and
    inherited here, is used only if it names the same index objects and exactly the same
    packs as the writer's copy: its chunks are then exactly the chunks of those packs, all
    in the writer's index.  Anything else (damaged, replaced, unreadable) means knowing
    nothing, which costs CPU only: a stored chunk is sealed again and the writer drops the
    blob.  Opening it here costs one checksummed read of the file (~60 bytes per chunk, 3 ms
    for the bench corpus's 63k chunks).  Without it, re-reading the whole bench corpus into a
    repository that holds it took 13-14 s of CPU instead of 6.1-6.3 s (docs/performance.md,
    "Backup worker processes")."""
    from pathlib import Path

    from freezer_ui.repository.index_cache import IndexCacheError, MappedIndex

    repo_id, index_ids, pack_ids, missing, n = expect
    try:
        mapped = MappedIndex(Path(f"/proc/self/fd/{fd}"), repo_id)
    except (OSError, ValueError, IndexCacheError):
        return None
    finally:
        os.close(fd)
    if (mapped.index_ids, mapped.pack_ids, sorted(mapped.missing), mapped.n) != (
        index_ids,
        pack_ids,
        missing,
        n,
    ):
        mapped.close()
        return None
    find = mapped.find
    return lambda cid: find(cid) >= 0


def _fatal_message(text: str) -> bytes:
    meta = msgpack.packb([["fatal", text[-4000:]]], use_bin_type=True)
    return _HEAD.pack(len(meta), 0) + meta


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux/glibc: EOF on the job pipe still ends the worker


# --- the backup's side -----------------------------------------------------------------------


class Job:
    """One file handed to a worker; filled in as its records arrive."""

    __slots__ = ("path", "dev", "size", "blocks", "large", "chunks", "total", "end", "done", "msg")

    def __init__(self, path: str, dev: int, size: int, blocks: int, large: bool) -> None:
        self.path, self.dev, self.size, self.blocks, self.large = path, dev, size, blocks, large
        self.chunks: list[list[Any]] = []
        self.total = 0
        self.end: list[Any] | None = None  # the end-of-file record
        self.done = False
        self.msg = 0  # bytes of the job message this job was sent in (its share)


class _Worker:
    def __init__(
        self,
        pid: int,
        jobs: Connection,
        results: Connection,
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.pid = pid
        self.jobs = jobs
        self.results = results
        self.proc = proc  # exec'ed workers: reaped through Popen, which then knows it ended
        self.running: deque[Job] = deque()  # sent, not finished, in order
        self.batch: list[Job] = []  # not sent yet
        self.batch_bytes = 0
        self.queued = 0  # file bytes sent or batched and not finished (load balancing)
        self.in_pipe = 0  # job message bytes sent and not finished
        # exit code once reaped, as Popen.returncode: -N if killed by signal N
        self.status: int | None = None


def start_method(start: str | None = None) -> str:
    """``start`` if given, else ``$FREEZER_UI_BACKUP_WORKERS_START``, else "fork" while this
    process runs a single thread and "exec" otherwise.

    Without a choice, "fork" also when this process may not run its own interpreter (a
    backup run as another user than the one who installed Python, whose directory that user
    cannot enter): the backup then works as it did before exec'ed workers existed, rather
    than failing on a hazard (a lock held at the fork) that has not happened.  A forced
    "exec" fails with the reason instead."""
    if start is None:
        start = os.environ.get(START_ENV) or None
        if start is not None and start not in STARTS:
            raise WorkerError(f"{START_ENV}={start!r}: expected one of {', '.join(STARTS)}")
    if start is None:
        return "fork" if can_fork() or not _can_exec() else "exec"
    if start not in STARTS:
        raise WorkerError(f"worker start {start!r}: expected one of {', '.join(STARTS)}")
    return start


def _can_exec() -> bool:
    return bool(sys.executable) and os.access(sys.executable, os.X_OK)


class Workers:
    """A few worker processes and the bookkeeping of the jobs they run.

    Used from one thread.  ``on_chunk(job, chunk_id, size, blob_or_None)`` is called for
    every chunk in the order each worker produced them; a job is ``done`` once its
    end-of-file record has arrived.  ``start`` is "fork", "exec" or ``None`` (see
    :func:`start_method`); :attr:`start` says which one was used."""

    def __init__(
        self,
        repo: Any,
        known: Callable[[bytes], bool],
        count: int,
        on_chunk: Callable[[Job, bytes, int, memoryview | None], None],
        *,
        start: str | None = None,
    ) -> None:
        self.on_chunk = on_chunk
        self.workers: list[_Worker] = []
        self._pipe_limit = PIPE_SIZE // 2
        self._poller: Any = None
        self.start = start_method(start)
        self._setup = b""  # exec: the first message to each worker (see _exec_main)
        self._index_fd: int | None = None
        try:
            if self.start == "exec":
                self._prepare_exec(repo)
            else:
                # Forced "fork" may still run beside other threads.  A lock another thread
                # holds at the fork stays held in the child forever; the one a worker could
                # meet is OpenSSL's algorithm store, taken for writing when a cipher is first
                # fetched.  Sealing once here makes the worker's fetches cache hits under
                # read locks (docs/performance.md, "Backup worker processes").
                repo.envelope.seal(b"warm", bytes(32), b"warm-up before fork")
            for _ in range(max(1, count)):
                self._start(repo, known)
        except BaseException:
            self.close(kill=True)
            raise
        finally:
            if self._index_fd is not None:
                os.close(self._index_fd)  # the workers have their own copies
                self._index_fd = None

    def _prepare_exec(self, repo: Any) -> None:
        """The exec'ed workers' setup message: config and keys this process already holds
        (no passphrase or scrypt again), and the writer's local index cache file, opened
        here, with what it must hold (see _known_from_cache).  ``repo.index`` is the index
        the writer loaded when it opened."""
        expect = None
        cached = getattr(repo.index, "cached", None)
        if cached is not None:
            try:
                self._index_fd = os.open(cached.path, os.O_RDONLY | os.O_CLOEXEC)
                expect = (
                    bytes.fromhex(repo.id),
                    list(cached.index_ids),
                    list(cached.pack_ids),
                    sorted(cached.missing),
                    cached.n,
                )
            except OSError:
                self._index_fd = None  # (gone meanwhile: the workers only know less)
        self._setup = pickle.dumps(
            (repo.config, repo.keys, self._index_fd, expect), pickle.HIGHEST_PROTOCOL
        )

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def _start(self, repo: Any, known: Callable[[bytes], bool]) -> None:
        import fcntl

        # Created under the lock: a worker forked meanwhile by another backup of this process
        # would otherwise copy these ends without knowing to close them.
        with _FORK_LOCK:
            job_r, job_w = Pipe(duplex=False)
            res_r, res_w = Pipe(duplex=False)
            for c in (job_w, res_w):
                try:
                    fcntl.fcntl(c.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
                except OSError:
                    pass
            try:
                size = fcntl.fcntl(job_w.fileno(), _F_GETPIPE_SZ)
                self._pipe_limit = min(self._pipe_limit, size // 2)
            except OSError:
                self._pipe_limit = min(self._pipe_limit, 32 << 10)
            try:
                if self.start == "fork":
                    w = self._fork(job_r, job_w, res_r, res_w, repo, known)
                else:
                    w = self._exec(job_r, job_w, res_r, res_w)
            except BaseException:
                for c in (job_r, job_w, res_r, res_w):
                    c.close()
                raise
            job_r.close()
            res_w.close()
            _OPEN_ENDS.update((job_w, res_r))
        self.workers.append(w)
        if w.proc is not None:
            try:
                job_w.send_bytes(self._setup)
            except OSError as e:
                raise self._died(w, f"cannot send it the repository keys: {e}") from None

    def _fork(
        self,
        job_r: Connection,
        job_w: Connection,
        res_r: Connection,
        res_w: Connection,
        repo: Any,
        known: Callable[[bytes], bool],
    ) -> _Worker:
        inherited = list(_OPEN_ENDS)
        try:
            pid = os.fork()
        except OSError as e:
            raise WorkerError(f"cannot start a backup worker process: {e.strerror or e}") from e
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            job_w.close()
            res_r.close()
            # The index as the writer holds it at the fork (a copy-on-write snapshot).
            _child(job_r, res_w, inherited, lambda: (repo, known))
        return _Worker(pid, job_w, res_r)

    def _exec(
        self, job_r: Connection, job_w: Connection, res_r: Connection, res_w: Connection
    ) -> _Worker:
        # The same freezer_ui as ours, whatever sys.path tricks the caller used; -P keeps the
        # current directory (maybe the tree being backed up) off sys.path.
        env = dict(os.environ)
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
        fds = (job_r.fileno(), res_w.fileno())
        extra = () if self._index_fd is None else (self._index_fd,)
        try:
            # close_fds (the default) with pass_fds: the worker inherits its two pipe ends
            # and nothing else, in particular no other worker's pipes.
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", __name__, *map(str, fds), str(os.getpid())],
                pass_fds=fds + extra,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as e:
            raise WorkerError(
                f"cannot start a backup worker process ({sys.executable}): {e.strerror or e}"
            ) from e
        return _Worker(proc.pid, job_w, res_r, proc)

    # -- jobs ------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        w = min(self.workers, key=lambda w: w.queued)
        w.batch.append(job)
        w.batch_bytes += job.size if not job.large else 0
        w.queued += job.size
        if job.large or len(w.batch) >= BATCH_FILES or w.batch_bytes >= BATCH_BYTES:
            self._send(w)

    def flush(self) -> None:
        """Send every batched job (before waiting for results)."""
        for w in self.workers:
            if w.batch:
                self._send(w)

    def _send(self, w: _Worker) -> None:
        """Send ``w``'s batched jobs, at most BATCH_FILES per message, while its job pipe
        has room (the rest stays batched until results free some)."""
        limit = self._pipe_limit
        while w.batch and w.in_pipe < limit:
            take = []
            est = 0
            for j in w.batch:
                take.append(j)
                est += len(j.path) + 40
                if len(take) >= BATCH_FILES or est >= limit // 4:
                    break
            msg = msgpack.packb(
                [[os.fsencode(j.path), j.dev, j.size, j.blocks, j.large] for j in take],
                use_bin_type=True,
            )
            try:
                w.jobs.send_bytes(msg)
            except OSError as e:
                raise self._died(w, f"cannot send it jobs: {e}") from None
            share = len(msg) // len(take) + 1
            for j in take:
                j.msg = share
                if not j.large:
                    w.batch_bytes -= j.size
            w.in_pipe += share * len(take)
            w.running.extend(take)
            del w.batch[: len(take)]

    def pump(self, timeout: float | None) -> bool:
        """Handle the results that are ready (waiting up to ``timeout`` seconds, ``None``:
        until some arrive).  Returns whether anything was handled."""
        if timeout is None and not any(w.running for w in self.workers):
            return False  # nothing will arrive (a dead worker is seen at its next job)
        if self._poller is None:
            self._poller = select.poll()
            for w in self.workers:
                self._poller.register(w.results.fileno(), select.POLLIN)
        ms = None if timeout is None else int(timeout * 1000)
        events = self._poller.poll(ms)
        if not events:
            return False
        by_fd = {w.results.fileno(): w for w in self.workers}
        for fd, _ev in events:
            self._receive(by_fd[fd])
        for w in self.workers:  # room in the job pipe again
            if w.batch and w.in_pipe < self._pipe_limit // 2:
                self._send(w)
        return True

    def _receive(self, w: _Worker) -> None:
        fd = w.results.fileno()
        try:
            n, nblobs = _HEAD.unpack(_read_exact(fd, _HEAD.size))
            view = memoryview(_read_exact(fd, n + nblobs))
        except (EOFError, OSError):
            raise self._died(w, "") from None
        records = msgpack.unpackb(view[:n])
        pos = n
        on_chunk = self.on_chunk
        for rec in records:
            if type(rec[0]) is int:  # end of a file
                if not w.running:
                    raise WorkerError(f"backup worker process {w.pid} sent a result for no file")
                job = w.running.popleft()
                job.end = rec
                job.done = True
                w.queued -= job.size
                w.in_pipe -= job.msg
                continue
            if rec[0] == "fatal":  # the worker's traceback: its last line says what failed
                lines = rec[1].strip().splitlines() or ["?"]
                raise self._died(w, "it failed: " + lines[-1])
            cid, size, blen = rec
            if not w.running:
                raise WorkerError(f"backup worker process {w.pid} sent a chunk for no file")
            job = w.running[0]
            blob = None
            if blen:
                # a view into the message: the writer copies it into the pack's stream
                blob = view[pos : pos + blen]
                pos += blen
            on_chunk(job, cid, size, blob)

    def _died(self, w: _Worker, why: str) -> WorkerError:
        code = self._reap(w, wait_s=1.0)
        if code is None:
            detail = "it closed its pipe"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            detail = f"killed by {name}"
        else:
            detail = f"exit status {code}"
        if why:
            detail += f"; {why}"
        return WorkerError(f"backup worker process {w.pid} died ({detail}); no generation written")

    # -- end ---------------------------------------------------------------------------------

    def _reap(self, w: _Worker, wait_s: float) -> int | None:
        """``w``'s exit code once it has ended (waiting up to ``wait_s``), else ``None``."""
        import time

        deadline = time.monotonic() + wait_s
        while w.status is None:
            self._wait(w, block=False)
            if w.status is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        return w.status

    @staticmethod
    def _wait(w: _Worker, block: bool) -> None:
        if w.status is not None:
            return
        if w.proc is not None:
            w.status = w.proc.wait() if block else w.proc.poll()
            return
        try:
            pid, status = os.waitpid(w.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            w.status = 0
            return
        if pid:
            w.status = os.waitstatus_to_exitcode(status)

    def close(self, kill: bool = False) -> None:
        """Stop every worker and reap it: closing the job pipe ends a worker's loop; with
        ``kill`` (or if one does not end within a few seconds) it is killed."""
        with _FORK_LOCK:
            for w in self.workers:
                for c in (w.jobs, w.results):
                    _OPEN_ENDS.discard(c)
                    try:
                        c.close()
                    except OSError:
                        pass
        for w in self.workers:
            if w.status is not None:
                continue
            if kill or self._reap(w, wait_s=5.0) is None:
                try:
                    os.kill(w.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._wait(w, block=True)


if __name__ == "__main__":
    _exec_main(sys.argv[1:])
