"""Tar engine backup: walk, files cache, read + chunk, and one logically full manifest."""

from __future__ import annotations

import errno
import gc
import os
import socket
import stat
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from freezer_ui.engines.base import BackupResult, SourceError
from freezer_ui.engines.filescache import FilesCache, cache_path
from freezer_ui.engines.tar.backup_workers import (
    CANNOT_OPEN,
    OK,
    Job,
    Workers,
    _Limited,
    data_extents,
    open_for_read,
)
from freezer_ui.engines.tar.walk import (
    Excluder,
    Owners,
    WalkWarnings,
    encode_path,
    read_xattrs,
)
from freezer_ui.engines.tar.walk_process import WalkProcess

# Files up to the chunker's minimum chunk size are read with one read() and stored as one
# chunk: content-defined chunking cannot cut them anyway, and this skips the chunker's per-file
# setup, which dominates for the small files that make up most trees.
DEFAULT_SMALL_FILE = 64 * 1024

# restic's rule: a file modified within the last second before the backup started may be
# modified again within the same mtime granularity without any visible change, so it is not
# cached (it will be re-read next time).
RACY_NS = 1_000_000_000

# Reading, cutting, hashing and sealing file contents happens in worker processes
# (backup_workers: one interpreter lock each); the walk and the writer share this process.
# Measured on the 2-core bench machine (1x corpus, cold caches): 2 workers 9.4-9.5 s,
# 3 workers 9.8-10.6 s.
WORKERS = max(1, min(2, os.cpu_count() or 1))
# Items in flight between scan and completion, and bytes of files handed to the workers
# and not completed (a large file counts with at most LARGE_AHEAD: its chunks go to the
# writer as they come, only the item waits).  Enough for one worker to stay busy while the
# other one cuts a 60 MB file at the head; an item in flight costs ~1 KB, file data is
# not held.  Measured (1x corpus, cold, 3 alternating pairs): 4096 items / 64 MiB
# 13.0-13.2 s, 16384 / 256 MiB 10.6-12.2 s, peak RSS +2-4 MB.
WINDOW = 16384
WINDOW_BYTES = 256 << 20
LARGE_AHEAD = 8 << 20
PUMP_EVERY = 16  # scanned items between two looks at the workers' results


class _End(NamedTuple):
    """The stat fields of a file after it was read that decide whether it changed."""

    st_ino: int
    st_size: int
    st_mtime_ns: int


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
        # Started first: the walk then overlaps with loading the caches and the index too.
        self._walker = WalkProcess(
            self.source, self.excludes.patterns, self.one_file_system, self.warnings
        )
        try:
            return self._run_walking(t0)
        finally:
            self._walker.close()

    def _run_walking(self, t0: float) -> BackupResult:
        cache = FilesCache.load(self.cache_file)
        if cache.warning and os.path.isfile(self.cache_file):
            # A damaged or foreign cache costs a full read, not correctness: said in the result.
            # (A cache that cannot even exist, e.g. under a file, is reported once, on save.)
            self.warnings.add(cache.warning)
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
    # This thread scans (the walk itself runs in a process of its own, walk_process): it builds
    # the items, answers unchanged files from the files cache and hands the files to read to
    # worker processes (backup_workers), which read, cut, hash and seal them.  Their sealed
    # chunks go to the writer as they arrive (it decides what is new); items complete
    # strictly in walk order.  Memory stays bounded by the window (items and file bytes in
    # flight) plus the pipes and the writer's buffers.

    def _items(self, cache: FilesCache, w: Any) -> Iterator[dict]:
        self._w = w
        # Worker processes start at the first file to read (_start_workers): an unchanged
        # run reads none, and starting two (exec'ed: ~0.16 s of imports each) would take
        # CPU from the walk and the scan on a 2-core machine.
        self._workers = None
        finished = False
        try:
            window: deque = deque()
            ahead = 0  # file bytes handed to workers and not completed
            for entry in self._scan(cache, w):
                job = entry[1]
                n = 0
                if job is not None and job[0] == "read":
                    n = min(job[1].size, LARGE_AHEAD)
                window.append((entry, n))
                ahead += n
                workers = self._workers
                if workers is not None and len(window) % PUMP_EVERY == 0:
                    # take what the workers have ready: their result pipes must not fill up
                    # (a worker waits then) while this thread is busy scanning
                    workers.pump(0)
                while window:
                    head, n = window[0]
                    hj = head[1]
                    if hj is not None and hj[0] == "read" and not hj[1].done:
                        if len(window) < WINDOW and ahead <= WINDOW_BYTES:
                            break
                        workers = self._workers  # started: the head is a file to read
                        workers.flush()
                        workers.pump(None)
                        continue
                    window.popleft()
                    ahead -= n
                    item = self._complete(head, w, cache)
                    if item is not None:
                        yield item
            workers = self._workers
            if workers is not None:
                workers.flush()
            while window:
                head, n = window[0]
                hj = head[1]
                if hj is not None and hj[0] == "read" and not hj[1].done:
                    workers.pump(None)
                    continue
                window.popleft()
                item = self._complete(head, w, cache)
                if item is not None:
                    yield item
            finished = True
        finally:
            if self._workers is not None:
                self._workers.close(kill=not finished)

    def _start_workers(self) -> Workers:
        # Started after the writer loaded the index (workers skip sealing chunks it holds);
        # forked or exec'ed, see backup_workers.start_method.
        if self._workers is None:
            self._workers = Workers(self.repo, self._w.known, WORKERS, self._on_chunk)
        return self._workers

    def _on_chunk(self, job: Job, cid: bytes, size: int, blob: memoryview | None) -> None:
        """A chunk from a worker, in its file's order: stored (unless known) right away."""
        self._w.add_sealed(cid, size, blob)
        job.chunks.append([cid, size])
        job.total += size
        if job.large and self.progress is not None:
            # Per chunk, not per file: a large file (a disk image) would otherwise show no
            # progress until it ends.
            self.progress.advance(bytes=size)

    def _scan(self, cache: FilesCache, w: Any):
        owners = self.owners
        warnings = self.warnings
        for rel, abspath, st in self._walker:
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
                job = self._scan_file(item, rel, abspath, st, cache, w)
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

    def _scan_file(self, item, rel, abspath, st, cache, w):
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
        # Files up to the chunker's minimum are read with one read() and stored as one chunk
        # (CDC could not cut them anyway); larger and sparse ones stream through the chunker.
        large = st.st_size > self.small_file or st.st_blocks * 512 < st.st_size
        job = Job(abspath, st.st_dev, st.st_size, st.st_blocks, large)
        self._start_workers().submit(job)
        return ("read", job, rel, st)

    def _complete(self, entry: tuple, w: Any, cache: FilesCache) -> dict | None:
        item, job = entry
        r = self.result
        if job is not None:
            if job[0] == "read":
                _, wjob, rel, st = job
                end = wjob.end
                if end[0] != OK:
                    self._failed.add(id(item))
                    _status, eno, strerror = end
                    if end[0] == CANNOT_OPEN:
                        if eno != errno.ENOENT:  # vanished: simply not in this backup
                            self.warnings.add(f"{rel}: cannot read: {strerror}")
                    elif wjob.large:
                        self.warnings.add(f"{rel}: read error: {strerror}")
                    else:
                        self.warnings.add(f"{rel}: cannot read: {strerror}")
                    return None
                _ok, extents, xattrs, ino, size, mtime_ns, events = end
                for dev, eno, msg in events:
                    if dev < 0:
                        self.warnings.add(msg)
                    else:
                        self.warnings.xattr_error(rel, dev, OSError(eno, msg))
                if wjob.large:
                    self._advanced[id(item)] = wjob.total
                self._finish_read(
                    item,
                    rel,
                    st,
                    wjob.chunks,
                    extents,
                    xattrs,
                    _End(ino, size, mtime_ns),
                    wjob.total,
                    cache,
                )
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

    def _read(self, item, rel, abspath, st, w: Any, cache: FilesCache) -> bool:
        """Read and chunk one file in this thread (a hard link whose first path could not be
        read). ``False`` (with a warning) if it cannot be read."""
        try:
            fd = open_for_read(abspath)
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
