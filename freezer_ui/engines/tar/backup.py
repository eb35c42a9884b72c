"""Tar engine backup: walk, files cache, read + chunk, and one logically full manifest."""

from __future__ import annotations

import errno
import gc
import os
import queue
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from freezer_ui.engines.base import BackupResult, SourceError
from freezer_ui.engines.filescache import FilesCache, cache_path
from freezer_ui.engines.tar.walk import (
    Excluder,
    Owners,
    WalkWarnings,
    encode_path,
    read_xattrs,
    walk,
)

# Files up to the chunker's minimum chunk size are read with one read() and stored as one
# chunk: content-defined chunking cannot cut them anyway, and this skips the chunker's per-file
# setup, which dominates for the small files that make up most trees.
DEFAULT_SMALL_FILE = 64 * 1024

# restic's rule: a file modified within the last second before the backup started may be
# modified again within the same mtime granularity without any visible change, so it is not
# cached (it will be re-read next time).
RACY_NS = 1_000_000_000

_O_NOATIME = getattr(os, "O_NOATIME", 0)
READERS = 4  # small-file reader threads: mostly waiting on the disk, not on the GIL
# Large (and sparse) files are read, chunked and hashed in their own thread (the chunker,
# BLAKE3 and reads release the GIL), streaming their chunks to the thread that feeds the
# writer.  One takes that work off the feeding thread (measured on the 0.2x bench corpus:
# streamer ~0.5 s CPU, feeding thread 1.5 -> 0.9 s); each streamer holds the chunker's
# buffer (2 x the maximum chunk), and a second one cost ~15 MB of peak RSS (119 vs 104 MB).
STREAMERS = 1
STREAM_QUEUE = 2  # chunks a streamer may have ready before it waits for the writer's thread
WINDOW = 256  # items in flight between scan and completion
WINDOW_BYTES = 8 << 20  # and at most this many bytes of small files read ahead
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_END = object()  # end of a streamed file


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


def _ref(ref: Any) -> list:
    return [ref.id, ref.size]


class TarBackup:
    """One backup run. Keeps the counters and warnings that end up in :class:`BackupResult`."""

    def __init__(
        self,
        repo: Any,
        source: str,
        *,
        backup_name: str,
        hostname: str | None,
        excludes: Sequence[str],
        one_file_system: bool,
        progress: Any | None,
        cache_dir: str | None,
        use_cache: bool = True,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.repo = repo
        self.source = os.path.abspath(source)
        self.backup_name = backup_name
        self.hostname = hostname or socket.gethostname()
        self.excludes = Excluder(excludes)
        self.one_file_system = one_file_system
        self.progress = progress
        self.cache_file = cache_path(repo.id, self.source, cache_dir) if use_cache else None
        self.warnings = WalkWarnings()
        self.owners = Owners()
        self.result = BackupResult(generation_id="")
        self.is_root = os.geteuid() == 0
        self.labels = dict(labels or {})

    # -- entry points -------------------------------------------------------------------------

    def run(self) -> BackupResult:
        # The run allocates a few objects per file and keeps the files cache (hundreds of
        # thousands of small lists) alive: the cyclic GC would rescan them over and over
        # (measured: 3-5x slower cache loading) while finding almost nothing to free.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if gc_was_enabled:
                gc.enable()

    def _run(self) -> BackupResult:
        t0 = time.monotonic()
        self.start_ns = time.time_ns()
        try:
            st = os.stat(self.source)
        except OSError as e:
            raise SourceError(f"cannot back up {self.source}: {e.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise SourceError(f"cannot back up {self.source}: not a directory")
        cache = FilesCache.load(self.cache_file)
        self.hardlinks: dict[tuple[int, int], dict] = {}
        self._failed: set[int] = set()  # id() of items whose file could not be read
        self._advanced: dict[int, int] = {}  # id(item) -> bytes already counted per chunk
        params = getattr(self.repo, "chunker_params", None)
        self.small_file = getattr(params, "min", DEFAULT_SMALL_FILE)
        r = self.result
        stats: dict[str, Any] = {}
        header = {
            "engine": "tar",
            "backup_name": self.backup_name,
            "hostname": self.hostname,
            "source": self.source,
            "time": self.start_ns / 1e9,
            "time_ns": self.start_ns,
            "excludes": list(self.excludes.patterns),
            "one_file_system": self.one_file_system,
            "stats": stats,
        }
        if self.labels:
            # Who the generation belongs to (e.g. the project): readers that serve several
            # tenants check it instead of trusting a backup record that points here.
            header["labels"] = {str(k): str(v) for k, v in self.labels.items()}
        with self.repo.writer(lock=True) as w:

            def items():
                # Streamed into commit: the walk, reads and chunk uploads happen while commit
                # serializes the item stream, so memory does not grow with the tree. commit
                # reads header["stats"] after the last item, which is when we fill it in.
                yield from self._items(cache, w)
                r.bytes_new = w.stats["new_bytes"]
                r.chunks_new = w.stats["new_chunks"]
                r.duration = time.monotonic() - t0
                r.warnings = self.warnings.messages
                d = r.to_dict()
                del d["generation_id"]
                d["warnings"] = d["warnings"][:1000]
                d["warnings_count"] = len(r.warnings)
                stats.update(d)

            r.generation_id = w.commit(header, items())
            # sealing finishes during commit's flush: the final figure is only known now
            r.bytes_stored = w.stats.get("stored_bytes", 0)
        try:
            cache.save()
        except OSError as e:
            # The generation is committed and complete; only the next run gets slower.
            r.warnings.append(f"files cache not saved ({self.cache_file}): {e.strerror}")
        r.duration = time.monotonic() - t0
        if self.progress is not None:
            self.progress.finish()
        return r

    # -- per item -----------------------------------------------------------------------------
    #
    # Two stages keep both cores and the disk busy. The scan (this thread) walks, answers
    # unchanged files from the cache and submits small files to reader threads, which open,
    # read and stat them (I/O and syscalls release the GIL, and several outstanding reads let
    # the disk reorder them). Items then complete strictly in walk order: their data goes to
    # the writer, which hashes here and compresses/encrypts in its own pool. Large files are
    # read here, streaming through the chunker, so memory stays bounded by
    # WINDOW x small-file size plus the writer's queue.

    def _items(self, cache: FilesCache, w: Any) -> Iterator[dict]:
        # Set when this generator stops early (an error, or the writer failed): streamers
        # waiting for room in their queue give up instead of blocking the pool's shutdown.
        self._abort = threading.Event()
        with (
            ThreadPoolExecutor(READERS, thread_name_prefix="fzui-read") as pool,
            ThreadPoolExecutor(STREAMERS, thread_name_prefix="fzui-stream") as streamers,
        ):
            self._streamers = streamers
            window: deque = deque()
            ahead = 0  # bytes read ahead by readers and streamers and not completed
            try:
                for entry in self._scan(cache, w, pool):
                    job = entry[1]
                    n = 0
                    if job is not None and job[0] == "read":
                        n = job[3].st_size
                    elif job is not None and job[0] == "stream":
                        n = min(job[3].st_size, STREAM_QUEUE * self.small_file)
                    window.append((entry, n))
                    ahead += n
                    while window and (len(window) >= WINDOW or ahead > WINDOW_BYTES):
                        done, n = window.popleft()
                        ahead -= n
                        item = self._complete(done, w, cache)
                        if item is not None:
                            yield item
                while window:
                    item = self._complete(window.popleft()[0], w, cache)
                    if item is not None:
                        yield item
            finally:
                self._abort.set()

    def _scan(self, cache: FilesCache, w: Any, pool: ThreadPoolExecutor):
        owners = self.owners
        warnings = self.warnings
        tree = walk(self.source, self.excludes, self.one_file_system, warnings)
        for rel, abspath, st in _ahead(tree, self._abort):
            mode = st.st_mode
            fmt = stat.S_IFMT(mode)
            item: dict[str, Any] = {
                "path": rel if rel.isascii() else encode_path(rel),
                "type": "file",
                "mode": stat.S_IMODE(mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "user": owners.user(st.st_uid),
                "group": owners.group(st.st_gid),
                "mtime_ns": st.st_mtime_ns,
            }
            if fmt == stat.S_IFREG:
                # Only files keep their atime: we read them with O_NOATIME, so it is stable.
                # Listing a directory or reading a symlink updates theirs (relatime), which
                # would make every unchanged run store a new item stream.
                item["atime_ns"] = st.st_atime_ns
                item["size"] = st.st_size
                job = self._scan_file(item, rel, abspath, st, cache, w, pool)
                if job is not False:
                    yield item, job
                continue
            if fmt == stat.S_IFDIR:
                item["type"] = "dir"
                x = read_xattrs(abspath, rel, st.st_dev, warnings, follow=False)
                if x:
                    item["xattrs"] = x
            elif fmt == stat.S_IFLNK:
                item["type"] = "symlink"
                try:
                    item["target"] = encode_path(os.readlink(abspath))
                except OSError as e:
                    warnings.add(f"{rel}: cannot read symlink: {e.strerror}")
                    continue
                if self.is_root:  # user.* xattrs cannot exist on symlinks
                    x = read_xattrs(abspath, rel, st.st_dev, warnings, follow=False)
                    if x:
                        item["xattrs"] = x
            elif fmt == stat.S_IFIFO:
                item["type"] = "fifo"
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                item["type"] = "chardev" if fmt == stat.S_IFCHR else "blockdev"
                item["rdev"] = st.st_rdev
            else:  # sockets cannot be restored meaningfully; tar skips them too
                continue
            yield item, None

    def _scan_file(self, item, rel, abspath, st, cache, w, pool):
        """Returns the job that completes the item: ``None`` (complete already), a tuple for
        :meth:`_complete`, or ``False`` when the file must be left out."""
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.hardlinks.get(key)
            if first is not None:
                return ("link", first, rel, abspath, st)
            self.hardlinks[key] = item
        entry = cache.lookup(rel, st) if cache.old else None
        if entry is not None:
            chunks = entry[4]
            known = w.known
            if len(chunks) == 1 and known(chunks[0][0]) or all(known(c[0]) for c in chunks):
                item["chunks"] = chunks
                if entry[5] is not None:
                    item["sparse"] = entry[5]
                if entry[6]:
                    item["xattrs"] = entry[6]
                item["atime_ns"] = entry[7]  # see filescache: atime as of the last read
                cache.keep(rel, entry)
                self.result.files_from_cache += 1
                return None
        if st.st_size <= self.small_file and not (st.st_blocks * 512 < st.st_size):
            return ("read", pool.submit(self._slurp, abspath, rel, st.st_dev), rel, st)
        out: queue.Queue = queue.Queue(STREAM_QUEUE)
        self._streamers.submit(self._stream, abspath, rel, st, out)
        return ("stream", out, rel, st)

    def _complete(self, entry: tuple, w: Any, cache: FilesCache) -> dict | None:
        item, job = entry
        r = self.result
        if job is not None:
            if job[0] == "read":
                _, fut, rel, st = job
                try:
                    data, cid, xattrs, end = fut.result()
                except OSError as e:
                    self._failed.add(id(item))
                    if e.errno != errno.ENOENT:  # vanished: simply not in this backup
                        self.warnings.add(f"{rel}: cannot read: {e.strerror}")
                    return None
                chunks = [_ref(w.add_chunk(data, cid))] if data else []
                self._finish_read(item, rel, st, chunks, None, xattrs, end, len(data), cache)
            elif job[0] == "stream":
                _, out, rel, st = job
                chunks = []
                total = 0
                while True:
                    msg = out.get()
                    if type(msg) is tuple:
                        data, cid = msg
                        chunks.append(_ref(w.add_chunk(data, cid)))
                        total += len(data)
                        if self.progress is not None:
                            # Per chunk, not per file: a large file (a disk image) would
                            # otherwise show no progress until it ends.
                            self.progress.advance(bytes=len(data))
                        continue
                    break
                if msg is None:  # unreadable or vanished: the streamer has warned
                    self._failed.add(id(item))
                    return None
                self._advanced[id(item)] = total
                extents, xattrs, end = msg
                self._finish_read(item, rel, st, chunks, extents, xattrs, end, total, cache)
            else:
                _, first, rel, abspath, st = job
                if id(first) in self._failed:
                    # the first path could not be read: this link gets its own content
                    del self.hardlinks[(st.st_dev, st.st_ino)]
                    if not self._read(item, rel, abspath, st, w, cache):
                        return None
                    self.hardlinks[(st.st_dev, st.st_ino)] = item
                else:
                    # Same inode already stored: reference it, and copy its chunk list so
                    # the item can be restored alone (subset restores) without reading.
                    item["type"] = "hardlink"
                    item["hardlink"] = first["path"]
                    for k in ("size", "chunks", "sparse", "xattrs", "atime_ns"):
                        if k in first:
                            item[k] = first[k]
        r.files += 1
        size = item.get("size", 0)
        if item["type"] in ("file", "hardlink"):
            r.regular_files += 1
            r.bytes_total += size
        if self.progress is not None:
            already = self._advanced.pop(id(item), 0)
            self.progress.advance(bytes=max(0, size - already), files=1)
        return item

    def _slurp(self, abspath: str, rel: str, dev: int):
        """Reader thread: a small file's data, its chunk id (hashed here, in parallel, not
        in the thread that feeds the writer), xattrs and its stat after reading."""
        fd = _open_for_read(abspath)
        try:
            data = os.read(fd, self.small_file + 1)
            xattrs = read_xattrs(fd, rel, dev, self.warnings)
            end = os.fstat(fd)
        finally:
            os.close(fd)
        return data, self.repo.chunk_id(data) if data else None, xattrs, end

    def _stream(self, abspath: str, rel: str, st: os.stat_result, out: queue.Queue) -> None:
        """Streamer thread: read a large or sparse file, cut it into content-defined chunks
        and hash them here; put ``(data, chunk id)`` per chunk on ``out``, then
        ``[extents, xattrs, stat after reading]``, or ``None`` (after a warning) if the file
        cannot be read.  The thread that feeds the writer takes them in walk order."""

        def put(msg: Any) -> bool:
            while True:
                try:
                    out.put(msg, timeout=0.2)
                    return True
                except queue.Full:
                    if self._abort.is_set():
                        return False

        try:
            fd = _open_for_read(abspath)
        except OSError as e:
            if e.errno != errno.ENOENT:  # vanished between listing and open: not backed up
                self.warnings.add(f"{rel}: cannot read: {e.strerror}")
            put(None)
            return
        try:
            size = st.st_size
            extents = None
            if size > 0 and st.st_blocks * 512 < size:
                extents = data_extents(fd, size)
            spans = [(0, 1 << 62)] if extents is None else extents
            chunk_id = self.repo.chunk_id
            for off, length in spans:
                for data in self.repo.cdc_chunks(_Limited(fd, off, length)):
                    if not put((data, chunk_id(data))):
                        return
            xattrs = read_xattrs(fd, rel, st.st_dev, self.warnings)
            end = os.fstat(fd)
        except OSError as e:
            self.warnings.add(f"{rel}: read error: {e.strerror}")
            put(None)
            return
        except BaseException:
            put(None)  # never leave the writer's thread waiting for this file
            raise
        finally:
            os.close(fd)
        put([extents, xattrs, end])

    def _read(self, item, rel, abspath, st, w: Any, cache: FilesCache) -> bool:
        """Read and chunk one file in this thread (a hard link whose first path could not be
        read). ``False`` (with a warning) if it cannot be read."""
        try:
            fd = _open_for_read(abspath)
        except OSError as e:
            if e.errno != errno.ENOENT:  # vanished between listing and open: not backed up
                self.warnings.add(f"{rel}: cannot read: {e.strerror}")
            return False
        try:
            size = st.st_size
            extents = None
            if size > 0 and st.st_blocks * 512 < size:
                extents = data_extents(fd, size)
            chunks: list = []
            total = 0
            spans = [(0, 1 << 62)] if extents is None else extents
            for off, length in spans:
                for data in self.repo.cdc_chunks(_Limited(fd, off, length)):
                    chunks.append(_ref(w.add_chunk(data)))
                    total += len(data)
            xattrs = read_xattrs(fd, rel, st.st_dev, self.warnings)
            end = os.fstat(fd)
        except OSError as e:
            self.warnings.add(f"{rel}: read error: {e.strerror}")
            return False
        finally:
            os.close(fd)
        self._finish_read(item, rel, st, chunks, extents, xattrs, end, total, cache)
        return True

    def _finish_read(self, item, rel, st, chunks, extents, xattrs, end, total, cache) -> None:
        r = self.result
        r.files_read += 1
        r.bytes_read += total
        size = st.st_size
        expected = size if extents is None else sum(e[1] for e in extents)
        item["chunks"] = chunks
        if extents is not None:
            item["sparse"] = extents
        if xattrs:
            item["xattrs"] = xattrs
        if (
            end.st_ino != st.st_ino
            or end.st_size != size
            or end.st_mtime_ns != st.st_mtime_ns
            or total != expected
        ):
            # Keep what was read (consistent with its chunks), warn, and never cache it.
            self.warnings.add(f"{rel}: file changed while being backed up")
            if extents is None:
                item["size"] = total
            return
        limit = self.start_ns - RACY_NS
        if st.st_mtime_ns < limit and st.st_ctime_ns < limit:
            cache.remember(rel, st, chunks, extents, xattrs)


WALK_BATCH = 256  # entries per hand-over from the walking thread
WALK_AHEAD = 8  # batches the walking thread may be ahead


def _ahead(entries: Iterator[Any], abort: threading.Event) -> Iterator[Any]:
    """``entries`` produced in a thread of their own, in order, a batch at a time.

    The walk is one ``scandir`` per directory and one ``lstat`` per entry: kernel time (and
    with page caches cold, disk waits) that then overlaps with the scan's own work (cache
    lookups, items, feeding the writer) instead of adding to it."""
    q: queue.Queue = queue.Queue(WALK_AHEAD)
    # our own stop signal: ``abort`` (the whole backup stops) is only read here, since the
    # walk ending must not stop the streamers still finishing the last files
    stop = threading.Event()

    def put(msg: Any) -> bool:
        while True:
            try:
                q.put(msg, timeout=0.2)
                return True
            except queue.Full:
                if stop.is_set() or abort.is_set():
                    return False

    def produce() -> None:
        batch: list = []
        try:
            for e in entries:
                batch.append(e)
                if len(batch) >= WALK_BATCH:
                    if not put(batch):
                        return
                    batch = []
            put(batch)
            put(None)
        except BaseException as exc:  # handed to the consumer, raised there after the entries
            if put(batch):
                put(exc)

    t = threading.Thread(target=produce, name="fzui-walk", daemon=True)
    t.start()
    try:
        while True:
            msg = q.get()
            if msg is None:
                return
            if isinstance(msg, BaseException):
                raise msg
            yield from msg
    finally:
        stop.set()
        t.join()


def _open_for_read(path: str) -> int:
    try:
        return os.open(path, _READ_FLAGS | _O_NOATIME)
    except PermissionError:
        # O_NOATIME is only allowed for the file's owner (or root).
        return os.open(path, _READ_FLAGS)
