"""The tar backup's tree walk, run in a process of its own.

An unchanged backup is the walk plus, per entry, a files-cache lookup and one item: the walk
(``scandir`` per directory, ``lstat`` per entry, sorting, building paths) was ~40 % of the
process's CPU time and, with cold inode caches, most of its waiting.  In a thread of the
backup process its Python work took the interpreter lock from the thread that builds items;
in a process of its own it runs on the other core, and its disk waits overlap with the
backup's own work (docs/performance.md, "The walk runs in a process of its own").

The walker sends batches of ``(relpath, stat fields)`` records and its warnings over a pipe,
marshalled: both ends are this program in the same interpreter (forked), so marshal's
version-specific format is safe, and it is the cheapest to decode of the standard formats.
The backup rebuilds each ``lstat`` result as a :class:`WalkStat`, which has the ``st_*``
attributes the backup reads.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import signal
import traceback
from collections.abc import Iterator, Sequence
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import NamedTuple

from freezer_ui.engines.base import EngineError
from freezer_ui.engines.tar.backup_workers import (
    _F_SETPIPE_SZ,
    _FORK_LOCK,
    _OPEN_ENDS,
)
from freezer_ui.engines.tar.walk import Excluder, WalkWarnings, walk

# Entries per message.  A message is ~25 KB; the 1 MiB pipe holds ~40 of them, which is how far
# the walker may run ahead of the backup (it blocks on a full pipe: memory stays bounded).
BATCH = 256
PIPE_SIZE = 1 << 20

# message kinds
_MORE, _END, _FAILED = 0, 1, 2
_PR_SET_PDEATHSIG, _PR_SET_NAME = 1, 15


class WalkStat(NamedTuple):
    """The ``lstat`` fields the backup uses, under ``os.stat_result``'s names."""

    st_mode: int
    st_ino: int
    st_dev: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_blocks: int
    st_rdev: int


class WalkError(EngineError):
    """The walk process failed or died: the backup cannot be complete."""


def _fields(st: os.stat_result) -> tuple:
    return (
        st.st_mode,
        st.st_ino,
        st.st_dev,
        st.st_nlink,
        st.st_uid,
        st.st_gid,
        st.st_size,
        st.st_atime_ns,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_blocks,
        st.st_rdev,
    )


def _load_prctl():
    # Loaded at import, in the parent: a forked child of a process with other threads must
    # not dlopen (the loader's lock may be held by a thread that no longer exists there).
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux/glibc: no name, and EOF on its pipe still ends the walker


_prctl = _load_prctl()


def _as_child_of_the_backup() -> None:
    """Die with the backup (``PR_SET_PDEATHSIG``) and take a name of our own (``comm``): an
    operator (or a test) tells the walker from the backup's worker processes in ``ps``."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _prctl(_PR_SET_NAME, b"fzui-walk", 0, 0, 0)


def _child(
    out: Connection, close: list[Connection], root: str, patterns: list[str], one_fs: bool
) -> None:
    """Runs in the forked process; never returns (``os._exit``)."""
    code = 0
    try:
        # Ctrl-C goes to the whole process group: the backup decides, and kills us.  The
        # caller's own SIGTERM handler (an agent's graceful stop) is not ours to run.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _as_child_of_the_backup()
        for c in close:  # other backups' worker pipes: their EOF must not wait for us
            c.close()
        warnings = WalkWarnings()
        send = out.send_bytes
        dumps = marshal.dumps
        batch: list = []
        for rel, _path, st in walk(root, Excluder(patterns), one_fs, warnings):
            batch.append((rel, _fields(st)))
            if len(batch) >= BATCH:
                send(dumps((_MORE, batch, warnings.messages)))
                batch = []
                warnings.messages = []
        send(dumps((_END, batch, warnings.messages)))
    except BaseException:  # noqa: BLE001 - reported to the backup, which raises it
        code = 1
        try:
            out.send_bytes(marshal.dumps((_FAILED, [], [traceback.format_exc()[-4000:]])))
        except BaseException:  # noqa: BLE001, S110 - the backup sees EOF instead
            pass
    finally:
        os._exit(code)


class WalkProcess:
    """``walk(root, ...)`` computed by a forked process; iterate it once, then :meth:`close`.

    Yields what :func:`walk` yields, ``(relpath, abspath, stat)``, in the same sorted
    pre-order, with :class:`WalkStat` for the stat, and adds the walk's warnings to
    ``warnings`` as they arrive.  Raises :class:`WalkError` if the walker fails or dies
    before the end of the tree: a backup never takes a partial walk for the whole tree.

    Forked, not exec'ed: it starts in ~2 ms, before the backup loads its caches (so the walk
    overlaps with that too) and holds nothing but the interpreter and the imported modules.
    In a process with other threads (the agent) the child only lists directories, stats and
    writes to its pipe: no lock another thread could hold at the fork is on that path.
    """

    def __init__(
        self, root: str, excludes: Sequence[str], one_file_system: bool, warnings: WalkWarnings
    ) -> None:
        self.root = root
        self.warnings = warnings
        self.status: int | None = None
        r, w = Pipe(duplex=False)
        try:
            fcntl.fcntl(w.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe only means the walker waits for us more often
        with _FORK_LOCK:
            inherited = list(_OPEN_ENDS)
            try:
                pid = os.fork()
            except OSError as e:
                r.close()
                w.close()
                raise WalkError(f"cannot start the walk process: {e.strerror or e}") from e
            if pid == 0:  # pragma: no cover - the child's coverage is not collected
                r.close()
                _child(w, inherited, root, list(excludes), one_file_system)
            w.close()
            # Worker processes forked after us close their copy of this end.
            _OPEN_ENDS.add(r)
        self.pid = pid
        self._conn = r

    def __iter__(self) -> Iterator[tuple[str, str, WalkStat]]:
        recv = self._conn.recv_bytes
        loads = marshal.loads
        new = tuple.__new__  # WalkStat._make without its Python-level frame (per entry)
        prefix = self.root.rstrip("/") + "/"
        add = self.warnings.add
        first = True
        while True:
            try:
                kind, batch, messages = loads(recv())
            except (EOFError, OSError):
                raise WalkError(f"the walk process died {self._reap()}") from None
            for m in messages:
                if kind == _FAILED:
                    raise WalkError(f"the walk of {self.root} failed:\n{m}")
                add(m)
            if first and batch:
                # the root itself, as walk() gives it: "." and the source path
                rel, fields = batch[0]
                yield rel, self.root, new(WalkStat, fields)
                batch = batch[1:]
                first = False
            for rel, fields in batch:
                yield rel, prefix + rel, new(WalkStat, fields)
            if kind == _END:
                return

    def _reap(self) -> str:
        """Wait for the walker and say how it ended (after its pipe closed)."""
        if self.status is None:
            try:
                _, self.status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.status = 0
        if os.WIFSIGNALED(self.status):
            sig = os.WTERMSIG(self.status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            return f"(killed by {name}) before the end of the tree"
        return f"(exit status {os.WEXITSTATUS(self.status)}) before the end of the tree"

    def close(self) -> None:
        """Stop the walker (if still running) and reap it; safe to call more than once."""
        if self._conn is not None:
            with _FORK_LOCK:
                _OPEN_ENDS.discard(self._conn)
            self._conn.close()
            self._conn = None  # type: ignore[assignment]
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                _, self.status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.status = 0

    def __enter__(self) -> WalkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
