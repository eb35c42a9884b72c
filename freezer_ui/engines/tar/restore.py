"""Tar engine restore: manifest items -> files under a target, never outside it.

Restore design (issue 3).  This process walks the items and does every namespace operation
itself, in order (mkdir, create with ``O_EXCL|O_NOFOLLOW`` through SafeTree, links, overwrite
policies).  On local storage the contents go to two worker processes (restore_workers.py, forked
before any thread exists, else exec'ed): batches of ~64 files / 4 MiB travel as open
descriptors (SCM_RIGHTS) with their chunk locations; a worker reads each run of adjacent chunks
as one pack span, verifies and decompresses every chunk, writes, sets metadata and closes.  Per
file that leaves one create here and write + metadata there, with no GIL hand-offs.  On the bench
corpus (68k files, 1.5 GB) it cut CPU from 11-16 s (user+sys, 4 writer threads) to 7-8 s, and
context switches from 0.2-0.5 M to 3 k.  Other storages keep the writer threads below.  A
corrupt chunk or a dead worker fails the restore; the workers are killed and reaped on every
error path.

All writes go through :class:`freezer_ui.engines.safepath.SafeTree` (dir fds opened with
``O_NOFOLLOW``) and leaf operations relative to the parent's fd, so neither hostile manifests nor
symlinks already present in the target can redirect a write. Directory metadata (mode, times)
is applied last, deepest first, so writing the contents does not disturb it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from freezer_ui.engines.base import OVERWRITE_POLICIES, RestoreResult, TargetError
from freezer_ui.engines.safepath import SafeTree, UnsafePath, normalize_selection, split_item_path
from freezer_ui.engines.tar import restore_workers
from freezer_ui.engines.tar.restore_workers import WorkerPool, write_all
from freezer_ui.repository.errors import MissingChunk
from freezer_ui.repository.format import pack_key
from freezer_ui.storage.local import LocalStorage

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
ZERO_BLOCK = 1024 * 1024

# File contents are written by a pool of threads while this thread walks the item stream:
# reading a chunk (pread of the pack), opening it (decompression and the id check release
# the GIL) and writing the file (kernel) overlap across files, and with page caches cold
# several reads are in flight at once.  The walk itself (mkdir, create, link, lstat) stays
# in order in this thread, so a worker only ever gets an open file descriptor, never a path
# or a directory descriptor that the walk may close.
WRITERS = 4
# Bound on what is queued for the writers: files and their logical bytes.  A file's data is
# read chunk by chunk, so memory is about WRITERS x (chunk + read-ahead), not these bytes;
# the bound keeps open descriptors and the restore's lag behind the walk small.
MAX_QUEUED_FILES = 64
MAX_QUEUED_BYTES = 64 << 20
# Chunks read ahead within one multi-chunk file (each up to 4 MiB of plaintext).
CHUNK_READ_AHEAD = 3

# On local storage, file contents go to worker processes instead (restore_workers.py): one
# per core, each with the GIL to itself.  A restore smaller than these (by the generation's
# stats) is not worth two forks.  START: "auto" forks while this process has one thread,
# else runs fresh interpreters ("exec"); tests force either.
PROCESSES = 2
PROCESS_MIN_FILES = 256
PROCESS_MIN_BYTES = 16 << 20
START = "auto"
# A batch handed to a worker closes at this many files or logical bytes: the hand-off and
# the pack reads (adjacent chunks are read as one span) are per batch, not per file.
BATCH_FILES = 64
BATCH_BYTES = 4 << 20


def iter_file_data(repo: Any, item: dict) -> Iterator[bytes]:
    """The logical content of a file item, chunk by chunk, holes of sparse files as zeros."""
    chunks = item.get("chunks") or []
    extents = item.get("sparse")
    size = int(item.get("size", 0))
    if extents is None:
        for cid, _n in chunks:
            yield repo.read_chunk(cid)
        return
    pos = 0
    data_iter = (repo.read_chunk(cid) for cid, _n in chunks)
    pending = b""
    for off, length in extents:
        while pos < off:
            n = min(ZERO_BLOCK, off - pos)
            yield bytes(n)
            pos += n
        left = length
        while left > 0:
            if not pending:
                pending = next(data_iter, b"")
                if not pending:
                    raise ValueError(f"{item.get('path')!r}: chunks shorter than extents")
            piece, pending = pending[:left], pending[left:]
            yield piece
            left -= len(piece)
            pos += len(piece)
    while pos < size:
        n = min(ZERO_BLOCK, size - pos)
        yield bytes(n)
        pos += n


def selected(parts: tuple[str, ...], selection: list[tuple[str, ...]] | None) -> bool:
    """An item is restored if it is at/under a selected path, or is an ancestor directory of
    one (so the selected subtree gets its parents' metadata)."""
    if selection is None:
        return True
    n = len(parts)
    for sel in selection:
        if parts[: len(sel)] == sel or sel[:n] == parts:
            return True
    return False


class TarRestore:
    def __init__(
        self,
        repo: Any,
        gen_id: str,
        target: str,
        *,
        paths: Sequence[str] | None,
        overwrite: str,
        progress: Any | None,
    ) -> None:
        if overwrite not in OVERWRITE_POLICIES:
            raise ValueError(f"overwrite must be one of {', '.join(OVERWRITE_POLICIES)}")
        self.repo = repo
        self.gen_id = gen_id
        self.target = target
        self.selection = [normalize_selection(p) for p in paths] if paths else None
        self.overwrite = overwrite
        self.progress = progress
        self.result = RestoreResult(generation_id=gen_id)
        self.is_root = os.geteuid() == 0
        # manifest path -> restored parts, for hard links to an inode already written
        self.written_files: dict[str, tuple[str, ...]] = {}
        self.dirs: list[tuple[tuple[str, ...], dict]] = []
        self._pool: ThreadPoolExecutor | None = None
        # (shown path, size, fd, future) of files handed to the writers, oldest first
        self._queued: deque[tuple[str, int, int, Future[tuple[int, list[str]]]]] = deque()
        self._queued_bytes = 0
        # Worker processes (local storage): the batch being filled, its descriptors and bytes.
        self._procs: WorkerPool | None = None
        self._batch: list[tuple] = []
        self._batch_fds: list[int] = []
        self._batch_bytes = 0
        self._pack_keys: dict[bytes, str] = {}
        # How file contents were written: "threads", "fork" or "exec" (worker processes).
        self.writer_mode = "threads"

    def run(self) -> RestoreResult:
        t0 = time.monotonic()
        gen = self.repo.open_generation(self.gen_id)
        # First, before any thread exists (a progress renderer's, the lock refresher, the
        # item read-ahead) and before the target is opened: a forked worker then holds no
        # lock or descriptor of the walk's.
        procs = self._start_processes(gen)
        with procs if procs is not None else contextlib.nullcontext():
            if self.progress is not None and self.selection is None:
                stats = (gen.header or {}).get("stats") or {}
                self.progress.start(stats.get("bytes_total"), stats.get("files"))
            # An existing target keeps its own owner/mode/times under "never"; a target we
            # create gets the source root's.
            self.target_existed = os.path.isdir(self.target)
            if procs is not None:
                self._run_processes(gen, procs)
            else:
                self._run_threads(gen)
        self.result.duration = time.monotonic() - t0
        if self.progress is not None:
            self.progress.finish()
        return self.result

    def _open_tree(self) -> SafeTree:
        try:
            return SafeTree(self.target)
        except OSError as e:
            raise TargetError(f"cannot use restore target {self.target}: {e.strerror}") from None

    def _start_processes(self, gen: Any) -> WorkerPool | None:
        if PROCESSES <= 0 or not isinstance(self.repo.storage, LocalStorage):
            return None  # remote storages keep the threaded path
        stats = (gen.header or {}).get("stats") or {}
        try:
            big = (
                int(stats.get("files") or 0) >= PROCESS_MIN_FILES
                or int(stats.get("bytes_total") or 0) >= PROCESS_MIN_BYTES
            )
        except (TypeError, ValueError):
            big = False
        if not big:
            return None
        start = START
        if start == "auto":
            start = "fork" if restore_workers.can_fork() else "exec"
        try:
            procs = WorkerPool(self.repo, PROCESSES, start)
        except OSError:
            return None  # no process to spare (EAGAIN, ENOMEM): the threads do the work
        self.writer_mode = start
        return procs

    def _run_processes(self, gen: Any, procs: WorkerPool) -> None:
        tree = self._open_tree()
        # A shared lock: backups may run alongside, but no prune removes packs under us.
        with tree, self.repo.lock(exclusive=False):
            self._procs = procs
            try:
                self._restore_items(tree, gen.items())
                self._flush()
                # Directory metadata does not depend on the file contents still being
                # written (only through descriptors): set it while the workers finish.
                self._finish_dirs(tree)
                while procs.pending:
                    self._apply(procs.wait_one())
            finally:
                self._procs = None
                # After an error, files of a batch not handed over stay empty, as a failed
                # write leaves them; the pool's exit kills the workers.
                for fd in self._batch_fds:
                    os.close(fd)
                self._batch, self._batch_fds, self._batch_bytes = [], [], 0

    def _run_threads(self, gen: Any) -> None:
        tree = self._open_tree()
        # A shared lock: backups may run alongside, but no prune removes packs under us.
        with tree, self.repo.lock(exclusive=False):
            with ThreadPoolExecutor(WRITERS, thread_name_prefix="fzui-restore") as pool:
                self._pool = pool
                try:
                    self._restore_items(tree, gen.items())
                    while self._queued:
                        self._collect_one()
                finally:
                    # After an error: writes not started yet are dropped (their files stay
                    # empty, as a failed write leaves them), running ones finish; then the
                    # error goes through.
                    for _shown, _size, fd, fut in self._queued:
                        if fut.cancel():
                            os.close(fd)
                    self._queued.clear()
                    self._pool = None
            self._finish_dirs(tree)

    # -- items --------------------------------------------------------------------------------

    def _selected_items(self, items: Iterable[dict]) -> Iterator[tuple]:
        r = self.result
        for item in items:
            raw = item.get("path") if isinstance(item, dict) else None
            try:
                parts = split_item_path(raw)
            except UnsafePath as e:
                r.rejected.append(str(e))
                continue
            if selected(parts, self.selection):
                yield parts, item

    def _restore_items(self, tree: SafeTree, items: Iterable[dict]) -> None:
        r = self.result
        for parts, item in self._selected_items(items):
            shown = "/".join(parts) or "."
            try:
                self._restore_one(tree, parts, shown, item)
            except UnsafePath as e:
                r.rejected.append(str(e))
            except OSError as e:
                r.warnings.append(f"{shown}: {e.strerror or e}")
            except (ValueError, TypeError, KeyError) as e:  # a malformed item, not a bad chunk
                r.rejected.append(f"{shown!r}: malformed item: {e}")

    def _restore_one(self, tree: SafeTree, parts: tuple[str, ...], shown: str, item: dict) -> None:
        r = self.result
        kind = item.get("type")
        if not parts:  # the source root: the target itself
            if kind == "dir" and (not self.target_existed or self.overwrite != "never"):
                self.dirs.append(((), item))
            return
        parent = tree.dir_fd(parts[:-1])
        name = parts[-1]
        # Create first and look only when the name is taken: every create below fails
        # with EEXIST rather than follow or replace anything, and a fresh target (the
        # common case) then costs no lstat per item.
        try:
            created = self._create(tree, parent, name, parts, item, shown, kind)
        except FileExistsError:
            existing = tree.lstat(parent, name)
            if existing is None:
                raise  # removed again in between: reported as a warning
            if kind == "dir" and stat.S_ISDIR(existing.st_mode):
                if self.overwrite != "never":
                    self.dirs.append((parts, item))
                return
            if self.overwrite == "never" or (
                self.overwrite == "if-newer" and existing.st_mtime_ns >= item.get("mtime_ns", 0)
            ):
                r.skipped.append(shown)
                return
            tree.remove(parts, parent, name, existing)
            created = self._create(tree, parent, name, parts, item, shown, kind)
        if created and self.progress is not None:
            self.progress.advance(bytes=int(item.get("size", 0) or 0), files=1)

    def _create(
        self,
        tree: SafeTree,
        parent: int,
        name: str,
        parts: tuple[str, ...],
        item: dict,
        shown: str,
        kind: Any,
    ) -> bool:
        """Create one entry; ``FileExistsError`` if the name is taken (nothing changed)."""
        r = self.result
        if kind == "file":
            self._file(parent, name, parts, item, shown)
        elif kind == "hardlink":
            self._hardlink(tree, parent, name, parts, item, shown)
        elif kind == "dir":
            os.mkdir(name, 0o700, dir_fd=parent)
            self.dirs.append((parts, item))
            r.files += 1
        elif kind == "symlink":
            target = item.get("target")
            if isinstance(target, bytes):
                target = os.fsdecode(target)
            if not isinstance(target, str) or "\x00" in target:
                raise UnsafePath(f"{shown!r}: invalid symlink target")
            # The link's content is data; we never follow links ourselves (O_NOFOLLOW everywhere).
            os.symlink(target, name, dir_fd=parent)
            self._meta_path(parent, name, item, shown, symlink=True)
            r.files += 1
        elif kind == "fifo":
            os.mkfifo(name, 0o600, dir_fd=parent)
            self._meta_path(parent, name, item, shown)
            r.files += 1
        elif kind in ("chardev", "blockdev"):
            if not self.is_root:
                r.warnings.append(f"{shown}: device nodes need root; skipped")
                return False
            fmt = stat.S_IFCHR if kind == "chardev" else stat.S_IFBLK
            os.mknod(name, 0o600 | fmt, int(item.get("rdev", 0)), dir_fd=parent)
            self._meta_path(parent, name, item, shown)
            r.files += 1
        else:
            r.rejected.append(f"{shown!r}: unknown item type {kind!r}")
            return False
        return True

    def _file(self, parent: int, name: str, parts: tuple[str, ...], item: dict, shown: str) -> None:
        if self._procs is not None:
            self._file_to_batch(parent, name, parts, item, shown)
            return
        if self._pool is None:
            fd = os.open(name, _CREATE, 0o600, dir_fd=parent)
            self.written_files[shown] = parts
            written, warnings = self._write_file(fd, item, shown)
            self._record(written, warnings)
            return
        size = int(item.get("size", 0) or 0)
        # Created here, so EEXIST reaches _restore_one (overwrite policies) before anything
        # else happens.  (Creating in the writer threads, through a dup of the directory
        # descriptor, was tried: it lost hard links in the property test, cause not found.)
        fd = os.open(name, _CREATE, 0o600, dir_fd=parent)
        # Registered now, not when written: a later hard link to this inode links to the
        # name while its content may still be being written (it is the same inode).
        self.written_files[shown] = parts
        try:
            fut = self._pool.submit(self._write_file, fd, item, shown)
        except BaseException:
            os.close(fd)
            raise
        self._queued.append((shown, size, fd, fut))
        self._queued_bytes += size
        while self._queued and (
            len(self._queued) > MAX_QUEUED_FILES or self._queued_bytes > MAX_QUEUED_BYTES
        ):
            self._collect_one()

    # -- worker processes -----------------------------------------------------------------------

    def _file_to_batch(
        self, parent: int, name: str, parts: tuple[str, ...], item: dict, shown: str
    ) -> None:
        fd = os.open(name, _CREATE, 0o600, dir_fd=parent)
        self.written_files[shown] = parts
        try:
            job = self._job(item, shown)
        except BaseException:
            os.close(fd)  # malformed or missing chunk: the file stays empty
            raise
        self._batch.append(job)
        self._batch_fds.append(fd)
        self._batch_bytes += job[1]
        if (
            len(self._batch) >= min(BATCH_FILES, restore_workers.MAX_FDS)
            or self._batch_bytes >= BATCH_BYTES
        ):
            self._flush()

    def _job(self, item: dict, shown: str) -> tuple:
        """What a worker needs for one file (see restore_workers): the chunk locations are
        looked up here, where the index is, so workers need none."""
        size = int(item.get("size", 0))
        refs = []
        located = self.repo.index.by_chunk.get  # one lookup per chunk: the walk's hot loop
        keys = self._pack_keys
        for cid, n in item.get("chunks") or []:
            loc = located(cid)
            if loc is None:
                loc = self._locate_again(cid)
            pack_id, offset, length, csize = loc
            key = keys.get(pack_id)
            if key is None:
                key = keys[pack_id] = pack_key(pack_id)
            refs.append((key, offset, length, csize, cid, n))
        extents = item.get("sparse")
        if extents is not None:
            extents = [(off, length) for off, length in extents]
        if self.is_root:
            uid, gid = int(item.get("uid", -1)), int(item.get("gid", -1))
        else:
            uid = gid = -1
        xattrs = item.get("xattrs") or None
        meta = (int(item.get("mode", 0o644)) & 0o7777, uid, gid, xattrs, _times(item))
        return (shown, size, refs, extents, meta)

    def _locate_again(self, cid: bytes) -> tuple[bytes, int, int, int]:
        # As Repository.read_chunk: one index reload before a chunk counts as missing.
        self.repo.refresh_index()
        loc = self.repo.index.by_chunk.get(cid)
        if loc is None:
            raise MissingChunk(f"chunk {cid.hex()} is not in the repository")
        return loc  # type: ignore[no-any-return]

    def _flush(self) -> None:
        """Hand the batch to a worker (waiting while every worker has enough queued)."""
        procs = self._procs
        if not self._batch or procs is None:
            return
        while procs.full():
            self._apply(procs.wait_one())
        batch, fds = self._batch, self._batch_fds
        self._batch, self._batch_fds, self._batch_bytes = [], [], 0
        try:
            procs.submit(batch, fds)
        finally:
            # The kernel holds its own references for the message: ours can go now.
            for fd in fds:
                os.close(fd)

    def _apply(self, outcomes: list[tuple[str, tuple]]) -> None:
        r = self.result
        for _shown, outcome in outcomes:
            if outcome[0] == "ok":
                self._record(outcome[1], outcome[2])
            elif outcome[0] == "warn":
                r.warnings.append(outcome[1])
            else:
                r.rejected.append(outcome[1])

    def _write_file(self, fd: int, item: dict, shown: str) -> tuple[int, list[str]]:
        """Content and metadata of a created file, then close it (in a writer thread).
        Returns the bytes written and the warnings, which the walk's thread records."""
        warnings: list[str] = []
        try:
            written = self._write_content(fd, item, shown)
            self._meta_fd(fd, item, shown, warnings)
        finally:
            os.close(fd)
        return written, warnings

    def _collect_one(self) -> None:
        """Wait for the oldest queued file and record its outcome as the walk would have."""
        shown, size, _fd, fut = self._queued.popleft()
        self._queued_bytes -= size
        r = self.result
        try:
            written, warnings = fut.result()
        except OSError as e:
            r.warnings.append(f"{shown}: {e.strerror or e}")
        except (ValueError, TypeError, KeyError) as e:  # a malformed item, not a bad chunk
            r.rejected.append(f"{shown!r}: malformed item: {e}")
        else:
            self._record(written, warnings)

    def _record(self, written: int, warnings: list[str]) -> None:
        r = self.result
        r.files += 1
        r.bytes_written += written
        r.warnings.extend(warnings)

    def _write_content(self, fd: int, item: dict, shown: str) -> int:
        repo = self.repo
        size = int(item.get("size", 0))
        chunks = item.get("chunks") or []
        extents = item.get("sparse")
        written = 0
        if extents is None:
            # Multi-chunk files decrypt ahead in two threads (large chunks amortize the thread
            # handoffs); for small files, measured, threads cost more than they save.
            if len(chunks) > 2:
                datas: Iterable[bytes] = repo.read_chunks(
                    (cid for cid, _ in chunks), window=CHUNK_READ_AHEAD
                )
            else:
                datas = (repo.read_chunk(cid) for cid, _ in chunks)
            for (_cid, n), data in zip(chunks, datas, strict=True):
                if len(data) != n:
                    raise ValueError(f"{shown}: chunk size mismatch")
                write_all(fd, data)
                written += len(data)
        else:
            datas = (repo.read_chunk(cid) for cid, _ in chunks)
            written += restore_workers.write_extents(fd, extents, datas, shown)
        if extents is not None or written != size:
            os.ftruncate(fd, size)
        return written

    def _hardlink(
        self,
        tree: SafeTree,
        parent: int,
        name: str,
        parts: tuple[str, ...],
        item: dict,
        shown: str,
    ) -> None:
        link = item.get("hardlink")
        try:
            src_parts = split_item_path(link)
        except UnsafePath as e:
            raise UnsafePath(f"{shown!r}: hard link target: {e}") from None
        src_key = "/".join(src_parts)
        have = self.written_files.get(src_key)
        # tree.dir_fd() for the source's directory may close every cached descriptor (its
        # bound on open fds), ``parent`` included, and a new descriptor may then reuse its
        # number: hold our own copy of the destination directory for this whole item.
        dst = os.dup(parent)
        try:
            if have:
                try:
                    src_parent = tree.dir_fd(have[:-1], create=False)
                    os.link(
                        have[-1],
                        name,
                        src_dir_fd=src_parent,
                        dst_dir_fd=dst,
                        follow_symlinks=False,
                    )
                    self.result.files += 1
                    return
                except (OSError, UnsafePath):
                    pass  # fall back to writing the content: the item carries its own chunks
            self._file(dst, name, parts, item, shown)
        finally:
            os.close(dst)
        # later links to the same inode now point here
        self.written_files[src_key] = parts

    # -- metadata -----------------------------------------------------------------------------

    def _meta_fd(self, fd: int, item: dict, shown: str, warnings: list[str] | None = None) -> None:
        w = self.result.warnings if warnings is None else warnings
        if self.is_root:
            try:
                os.fchown(fd, int(item.get("uid", -1)), int(item.get("gid", -1)))
            except OSError as e:
                w.append(f"{shown}: cannot set owner: {e.strerror}")
        for k, v in (item.get("xattrs") or {}).items():
            try:
                os.setxattr(fd, k, v)
            except OSError as e:
                w.append(f"{shown}: cannot set xattr {k}: {e.strerror}")
        # chmod after chown: chown clears setuid/setgid bits
        os.fchmod(fd, int(item.get("mode", 0o644)) & 0o7777)
        _utime(fd, item)

    def _meta_path(
        self, parent: int, name: str, item: dict, shown: str, symlink: bool = False
    ) -> None:
        w = self.result.warnings
        if self.is_root:
            try:
                os.chown(
                    name,
                    int(item.get("uid", -1)),
                    int(item.get("gid", -1)),
                    dir_fd=parent,
                    follow_symlinks=False,
                )
            except OSError as e:
                w.append(f"{shown}: cannot set owner: {e.strerror}")
        xattrs = item.get("xattrs") or {}
        if xattrs:
            # l*xattr has no *at() form; /proc/self/fd/N names the parent we hold open, and
            # follow_symlinks=False keeps the last component from being followed.
            p = f"/proc/self/fd/{parent}/{name}"
            for k, v in xattrs.items():
                try:
                    os.setxattr(p, k, v, follow_symlinks=False)
                except OSError as e:
                    w.append(f"{shown}: cannot set xattr {k}: {e.strerror}")
        if not symlink:
            # fifos/devices were just created by us in a directory reached without following
            # symlinks, so the name still refers to them.
            os.chmod(name, int(item.get("mode", 0o644)) & 0o7777, dir_fd=parent)
        ns = _times(item)
        if ns is not None:
            try:
                os.utime(name, ns=ns, dir_fd=parent, follow_symlinks=False)
            except OSError as e:
                w.append(f"{shown}: cannot set times: {e.strerror}")

    def _finish_dirs(self, tree: SafeTree) -> None:
        # deepest first, so setting a child's times never changes its parent's afterwards
        for parts, item in reversed(self.dirs):
            shown = "/".join(parts) or "."
            try:
                fd = tree.dir_fd(parts, create=False)
                self._meta_fd(fd, item, shown)
            except UnsafePath as e:
                self.result.rejected.append(str(e))
            except OSError as e:
                self.result.warnings.append(f"{shown}: {e.strerror or e}")


def _times(item: dict) -> tuple[int, int] | None:
    m = item.get("mtime_ns")
    if m is None:
        return None
    return (int(item.get("atime_ns", m)), int(m))


def _utime(fd: int, item: dict) -> None:
    ns = _times(item)
    if ns is not None:
        os.utime(fd, ns=ns)
