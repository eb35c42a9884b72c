"""Worker processes that write restored file contents (used by ``restore.py`` on local storage).

The restore's walk (its own process) creates every file itself and hands *batches* of open file
descriptors, with what each file needs (chunk locations already looked up, sizes, sparse
extents, metadata), to a few worker processes over Unix sockets (``SCM_RIGHTS``).  A worker reads
the pack spans, checks and decompresses every chunk (``Repository.open_chunk_blob``), writes,
sets the metadata, closes the descriptor, and answers one result per batch.  Workers never see a
path or a directory descriptor, so every namespace guarantee of the walk (``SafeTree``,
``O_NOFOLLOW``, overwrite policies) stays where it is.

Messages are ``u32 length | pickle`` on a stream socket; descriptors travel with the first byte
of a message.  Pickle is fine here: both ends are this program, forked or exec'ed by the walk.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Iterable
from typing import Any

from freezer_ui.engines.base import EngineError
from freezer_ui.repository.errors import RepositoryError
from freezer_ui.storage import ObjectNotFound

_LEN = struct.Struct("<I")
# The kernel accepts at most 253 descriptors per SCM_RIGHTS message.
MAX_FDS = 250
# Adjacent chunks (files written in walk order sit next to each other in a pack) are read as
# one span of at most this many bytes, then sliced.  Below the 4 MiB mmap threshold that
# _malloc.tune_malloc sets, so span buffers are recycled by malloc instead of being mapped,
# page-faulted and zeroed again for every read.
SPAN_MAX = 3 << 20
ZERO_BLOCK = 1024 * 1024

# One file of a batch: (shown path, size, chunks, sparse extents or None, metadata).
#   chunks: [(pack key, offset, stored length, plaintext size from the index, chunk id,
#             plaintext size from the item)]
#   metadata: (mode, uid, gid, xattrs or None, (atime_ns, mtime_ns) or None)
# Outcome per file: ("ok", bytes written, warnings) | ("warn", text) | ("rej", text).


class RestoreWorkerError(EngineError):
    """A restore worker process died or broke the protocol (not a data error)."""


# --- framing -----------------------------------------------------------------------------------


def send_msg(sock: socket.socket, obj: Any, fds: list[int] | tuple[int, ...] = ()) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = _LEN.pack(len(payload)) + payload
    if fds:
        n = socket.send_fds(sock, [data], list(fds))
        if n < len(data):
            sock.sendall(memoryview(data)[n:])
    else:
        sock.sendall(data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return bytes(buf)


def recv_msg(sock: socket.socket, want_fds: bool = False) -> tuple[Any, list[int]] | None:
    """One message and the descriptors that came with it; ``None`` at end of stream."""
    fds: list[int] = []
    head = b""
    if want_fds:
        # Descriptors ride on the message's first bytes: read those with recvmsg.
        data, fds, _flags, _addr = socket.recv_fds(sock, _LEN.size, MAX_FDS + 3)
        if not data:
            return None
        head = data
    rest = _recv_exact(sock, _LEN.size - len(head)) if len(head) < _LEN.size else b""
    if rest is None:
        _close_all(fds)
        return None
    (n,) = _LEN.unpack(head + rest)
    payload = _recv_exact(sock, n)
    if payload is None:
        _close_all(fds)
        return None
    return pickle.loads(payload), fds


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# --- the worker side ---------------------------------------------------------------------------


class _Spans:
    """Raw chunk blobs of one batch, read as few contiguous pack spans as possible."""

    def __init__(self, storage: Any, refs: list[tuple[str, int, int]]) -> None:
        self.storage = storage
        self.refs = refs
        self.span_of: list[int] = []
        self.spans: list[tuple[str, int, int]] = []  # key, start, end
        for key, off, length in refs:
            if self.spans:
                skey, start, end = self.spans[-1]
                if skey == key and off == end and off + length - start <= SPAN_MAX:
                    self.spans[-1] = (key, start, off + length)
                    self.span_of.append(len(self.spans) - 1)
                    continue
            self.spans.append((key, off, off + length))
            self.span_of.append(len(self.spans) - 1)
        self._cur = -1
        self._buf: memoryview = memoryview(b"")

    def blob(self, i: int) -> memoryview:
        s = self.span_of[i]
        key, start, end = self.spans[s]
        if s != self._cur:
            self._buf = memoryview(b"")  # free the previous span before reading the next
            try:
                data = self.storage.get_range(key, start, end - start)
            except ObjectNotFound:
                raise RepositoryError(
                    f"pack {key} is gone (removed by a concurrent prune?); reopen the repository"
                ) from None
            self._buf = memoryview(data)
            self._cur = s
        _key, off, length = self.refs[i]
        # A short read (truncated pack) gives a short slice: open_chunk_blob reports it with
        # the pack and offset, as a single read would.
        return self._buf[off - start : off - start + length]


def write_extents(fd: int, extents: Iterable[Any], datas: Any, shown: str) -> int:
    """Write a sparse file's data extents, taking bytes from the ``datas`` iterator in order;
    holes are seeked over, never written, so the file stays sparse (the caller truncates it
    to its size).  Returns the bytes written."""
    written = 0
    pending: bytes | memoryview = b""
    for off, length in extents:
        os.lseek(fd, off, os.SEEK_SET)
        left = length
        while left > 0:
            if not pending:
                nxt = next(datas, None)
                if nxt is None:
                    raise ValueError(f"{shown}: chunks shorter than extents")
                pending = memoryview(nxt)
            piece, pending = pending[:left], pending[left:]
            write_all(fd, piece)
            left -= len(piece)
            written += len(piece)
    return written


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until everything is written (a write may be short: signals, quota edges)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Writer:
    """Writes the files of batches (in a worker process; also usable in-process in tests)."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.is_root = os.geteuid() == 0

    def batch(self, files: list[tuple], fds: list[int]) -> list[tuple]:
        refs = [(c[0], c[1], c[2]) for f in files for c in f[2]]
        spans = _Spans(self.repo.storage, refs)
        out: list[tuple] = []
        base = 0
        try:
            for k, (job, fd) in enumerate(zip(files, fds, strict=True)):
                shown = job[0]
                try:
                    try:
                        done = ("ok", *self._file(fd, job, spans, base))
                    finally:
                        fds[k] = -1
                        os.close(fd)  # may fail too (EIO, ENOSPC on delayed allocation)
                    out.append(done)
                except OSError as e:
                    out.append(("warn", f"{shown}: {e.strerror or e}"))
                except (ValueError, TypeError, KeyError) as e:  # malformed item, not bad chunk
                    out.append(("rej", f"{shown!r}: malformed item: {e}"))
                base += len(job[2])
        finally:
            _close_all(fd for fd in fds if fd >= 0)
        return out

    def _chunks(self, job: tuple, spans: _Spans, base: int) -> Any:
        shown = job[0]
        open_blob = self.repo.open_chunk_blob
        for i, (key, off, _length, size, cid, n) in enumerate(job[2]):
            data = open_blob(cid, size, spans.blob(base + i), key, off)
            if len(data) != n:
                raise ValueError(f"{shown}: chunk size mismatch")
            yield data

    def _file(self, fd: int, job: tuple, spans: _Spans, base: int) -> tuple[int, list[str]]:
        shown, size, chunks, extents, meta = job
        written = 0
        if extents is None:
            # The common case without a generator (most files are one chunk).
            open_blob = self.repo.open_chunk_blob
            for i, (key, off, _length, csize, cid, n) in enumerate(chunks):
                data = open_blob(cid, csize, spans.blob(base + i), key, off)
                if len(data) != n:
                    raise ValueError(f"{shown}: chunk size mismatch")
                k = os.write(fd, data)
                if k != len(data):  # a short write (signal, quota edge): the rest in a loop
                    write_all(fd, memoryview(data)[k:])
                written += len(data)
        else:
            written += write_extents(fd, extents, self._chunks(job, spans, base), shown)
        if extents is not None or written != size:
            os.ftruncate(fd, size)
        warnings: list[str] = []
        mode, uid, gid, xattrs, times = meta
        if self.is_root:
            try:
                os.fchown(fd, uid, gid)
            except OSError as e:
                warnings.append(f"{shown}: cannot set owner: {e.strerror}")
        for k, v in (xattrs or {}).items():
            try:
                os.setxattr(fd, k, v)
            except OSError as e:
                warnings.append(f"{shown}: cannot set xattr {k}: {e.strerror}")
        # chmod after chown: chown clears setuid/setgid bits
        os.fchmod(fd, mode)
        if times is not None:
            os.utime(fd, ns=times)
        return written, warnings


def _tune_worker_malloc() -> None:
    # A worker only recycles buffers of a few MiB (spans, chunks): keep freed memory in the
    # heap instead of trimming it after every large free and faulting it back in (page zeroing
    # showed in the kernel profile).  Its peak stays a few spans and chunks.
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError, ImportError):
        pass  # not glibc


def serve(sock: socket.socket, repo: Any) -> int:
    """The worker loop: batches in, one result list per batch out, until end of stream.  After
    a fatal error (corrupt or missing data) the error is sent once and later batches are only
    closed: the walk stops at that error."""
    _tune_worker_malloc()
    writer = _Writer(repo)
    failed = False
    while True:
        try:
            msg = recv_msg(sock, want_fds=True)
        except ConnectionError:
            msg = None
        if msg is None:
            return 0  # end of stream: the restore ended, or the walk is gone
        files, fds = msg
        if failed or len(fds) != len(files):
            _close_all(fds)
            if not failed:
                failed = True
                send_msg(sock, ("fatal", _portable(RestoreWorkerError("descriptors lost"))))
            continue
        try:
            result: tuple = ("ok", writer.batch(files, fds))
        except Exception as exc:  # noqa: BLE001 - every error goes back to the walk
            failed = True
            exc.add_note("(in a restore worker process)\n" + traceback.format_exc())
            result = ("fatal", _portable(exc))
        try:
            send_msg(sock, result)
        except ConnectionError:
            return 0  # the walk is gone (killed): nobody to answer, nothing more to do


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling (CorruptData keeps its text, pack key and
    offset), else a RestoreWorkerError with its type and text."""
    try:
        back = pickle.loads(pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))
        if str(back) == str(exc):
            return exc
    except Exception:  # noqa: BLE001, S110 - any failure means: not portable
        pass
    return RestoreWorkerError(f"{type(exc).__name__}: {exc}")


def _worker_signals() -> None:
    # Ctrl-C reaches the whole process group: the walk decides, and kills us.  A forked
    # worker must not run the caller's own handlers (an agent's graceful SIGTERM): die.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _child_main(sock_fd: int) -> int:
    """Entry of an exec'ed worker: the repository's storage root, config and keys come first."""
    from freezer_ui.repository.repository import Repository
    from freezer_ui.storage.local import LocalStorage

    _worker_signals()
    sock = socket.socket(fileno=sock_fd)
    sock.setblocking(True)  # the parent's default timeout may have made it non-blocking
    msg = recv_msg(sock)
    if msg is None:
        return 0
    root, config, keys = msg[0]
    repo = Repository(LocalStorage(root, create=False), config, keys)
    return serve(sock, repo)


# --- the walk side -----------------------------------------------------------------------------


class _Worker:
    def __init__(self, sock: socket.socket, pid: int, proc: subprocess.Popen[bytes] | None):
        self.sock = sock
        self.pid = pid
        self.proc = proc
        # (sequence number, shown paths) of the batches in flight, oldest first
        self.batches: deque[tuple[int, list[str]]] = deque()
        self.reaped = False

    def status(self) -> str:
        """How the process ended (reaps it; waits if it has not ended yet)."""
        code = self.wait()
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def wait(self, nohang: bool = False) -> int | None:
        if self.reaped:
            return self._code
        if self.proc is not None:
            code = self.proc.poll() if nohang else self.proc.wait()
        else:
            pid, st = os.waitpid(self.pid, os.WNOHANG if nohang else 0)
            code = None if pid == 0 else os.waitstatus_to_exitcode(st)
        if code is not None:
            self.reaped = True
            self._code: int | None = code
        return code


class WorkerPool:
    """``n`` worker processes for one restore; a context manager that always reaps them.

    ``start="fork"`` forks this process (only safe while it has a single thread: the restore
    forks before the lock refresher or any reader thread starts); ``start="exec"`` runs a fresh
    interpreter (``python -m freezer_ui.engines.tar.restore_workers``) and sends it the
    repository's storage root, config and keys over the socket.
    """

    def __init__(self, repo: Any, n: int, start: str, *, in_flight: int = 2) -> None:
        self.repo = repo
        self.start = start
        self.in_flight = in_flight
        self.workers: list[_Worker] = []
        self._seq = 0
        try:
            for _ in range(n):
                self.workers.append(self._spawn())
        except BaseException:
            self.kill()
            raise

    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Blocking, whatever socket.setdefaulttimeout() says: a batch may take long to write.
        parent.setblocking(True)
        child.setblocking(True)
        try:
            if self.start == "fork":
                pid = os.fork()
                if pid == 0:  # the child: never returns into the caller's code
                    code = 70
                    try:
                        _worker_signals()
                        # Other workers' sockets must not stay open here, or their EOF
                        # (the walk closing them) would never arrive.
                        parent.close()
                        for w in self.workers:
                            w.sock.close()
                        code = serve(child, self.repo)
                    except BaseException:  # noqa: BLE001 - report, then leave without cleanup
                        traceback.print_exc()
                    finally:
                        os._exit(code)
                return _Worker(parent, pid, None)
            # The same freezer_ui as ours, whatever sys.path tricks the caller used; -P keeps
            # the current directory (maybe the restore target's parent) off sys.path.
            env = dict(os.environ)
            here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", __name__, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
            w = _Worker(parent, proc.pid, proc)
            storage = self.repo.storage
            # The config and keys the walk already holds (no passphrase or scrypt again).
            send_msg(parent, (storage.root, self.repo.config, self.repo.keys))
            return w
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()

    @property
    def pending(self) -> int:
        return sum(len(w.batches) for w in self.workers)

    def full(self) -> bool:
        return all(len(w.batches) >= self.in_flight for w in self.workers)

    def submit(self, files: list[tuple], fds: list[int]) -> None:
        """Send one batch to the least busy worker (the caller keeps and closes its fds)."""
        w = min(self.workers, key=lambda w: len(w.batches))
        try:
            send_msg(w.sock, files, fds)
        except OSError as e:  # EPIPE / ECONNRESET: the worker is gone
            raise RestoreWorkerError(
                f"restore worker {w.pid} is gone ({w.status()}): {e.strerror or e}"
            ) from None
        self._seq += 1
        w.batches.append((self._seq, [f[0] for f in files]))

    def wait_one(self) -> list[tuple[str, tuple]]:
        """Block until a worker answers its oldest batch; its (shown, outcome) pairs.  Raises
        the worker's fatal error, or RestoreWorkerError when a worker dies."""
        busy = [w for w in self.workers if w.batches]
        if not busy:
            return []
        ready, _, _ = select.select([w.sock for w in busy], [], [])
        # The oldest batch among the answers waiting: taking the first ready socket would
        # leave a second worker's answers (and that worker) waiting while the first is busy.
        w = min((w for w in busy if w.sock in ready), key=lambda w: w.batches[0][0])
        try:
            msg = recv_msg(w.sock)
        except OSError:  # ECONNRESET: as good as the end of stream
            msg = None
        if msg is None:
            raise RestoreWorkerError(
                f"restore worker {w.pid} died ({w.status()}) with {len(w.batches)} batches "
                "of files in flight"
            )
        (kind, payload), _fds = msg
        _seq, shown = w.batches.popleft()
        if kind == "fatal":
            raise payload
        if len(payload) != len(shown):
            raise RestoreWorkerError(f"restore worker {w.pid} answered a batch wrongly")
        return list(zip(shown, payload, strict=True))

    def close(self) -> None:
        """Normal end (nothing in flight): end of stream to each worker, then reap it."""
        for w in self.workers:
            try:
                w.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        try:
            for w in self.workers:
                w.sock.settimeout(30.0)
                try:
                    while recv_msg(w.sock) is not None:
                        pass
                except OSError:
                    continue  # no end of stream in 30 s: kill() below
                # The stream ends when the worker exits: reaping it now does not wait.
                w.wait()
        finally:
            self.kill()

    def kill(self) -> None:
        """Error path: SIGKILL every worker still running, then reap all of them."""
        for w in self.workers:
            try:
                w.sock.close()
            except OSError:
                pass
            if w.wait(nohang=True) is None:
                try:
                    os.kill(w.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for w in self.workers:
            w.wait()


def can_fork() -> bool:
    """Forking is only safe while this process runs one thread (no lock held by another)."""
    return threading.active_count() == 1


if __name__ == "__main__":
    sys.exit(_child_main(int(sys.argv[1])))
