"""Tar engine backup: walk, files cache, read + chunk, and one logically full manifest."""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Sequence
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
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


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
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

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

    # -- entry points -------------------------------------------------------------------------

    def run(self) -> BackupResult:
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
        cache.save()
        r.duration = time.monotonic() - t0
        if self.progress is not None:
            self.progress.finish()
        return r

    # -- per item -----------------------------------------------------------------------------

    def _items(self, cache: FilesCache, w: Any):
        r = self.result
        progress = self.progress
        owners = self.owners
        for rel, abspath, st in walk(
            self.source, self.excludes, self.one_file_system, self.warnings
        ):
            mode = st.st_mode
            fmt = stat.S_IFMT(mode)
            item: dict[str, Any] = {
                "path": rel if rel.isascii() else encode_path(rel),
                "type": "",
                "mode": stat.S_IMODE(mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "user": owners.user(st.st_uid),
                "group": owners.group(st.st_gid),
                "mtime_ns": st.st_mtime_ns,
                "atime_ns": st.st_atime_ns,
            }
            if fmt == stat.S_IFREG:
                item["type"] = "file"
                if not self._file(item, rel, abspath, st, cache, w):
                    continue
                r.regular_files += 1
            elif fmt == stat.S_IFDIR:
                item["type"] = "dir"
                x = read_xattrs(abspath, rel, st.st_dev, self.warnings, follow=False)
                if x:
                    item["xattrs"] = x
            elif fmt == stat.S_IFLNK:
                item["type"] = "symlink"
                try:
                    item["target"] = encode_path(os.readlink(abspath))
                except OSError as e:
                    self.warnings.add(f"{rel}: cannot read symlink: {e.strerror}")
                    continue
                if self.is_root:  # user.* xattrs cannot exist on symlinks
                    x = read_xattrs(abspath, rel, st.st_dev, self.warnings, follow=False)
                    if x:
                        item["xattrs"] = x
            elif fmt == stat.S_IFIFO:
                item["type"] = "fifo"
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                item["type"] = "chardev" if fmt == stat.S_IFCHR else "blockdev"
                item["rdev"] = st.st_rdev
            else:  # sockets cannot be restored meaningfully; tar skips them too
                continue
            r.files += 1
            if progress is not None:
                progress.advance(bytes=item.get("size", 0), files=1)
            yield item

    def _file(
        self,
        item: dict,
        rel: str,
        abspath: str,
        st: os.stat_result,
        cache: FilesCache,
        w: Any,
    ) -> bool:
        """Fill a regular file's item; ``False`` if it must be left out (unreadable)."""
        r = self.result
        size = st.st_size
        item["size"] = size
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.hardlinks.get(key)
            if first is not None:
                # Same inode already stored: reference it, and copy its chunk list so the
                # item can be restored alone (subset restores) without reading anything.
                item["type"] = "hardlink"
                item["hardlink"] = first["path"]
                item["size"] = first["size"]
                item["chunks"] = first["chunks"]
                for k in ("sparse", "xattrs"):
                    if k in first:
                        item[k] = first[k]
                r.bytes_total += item["size"]
                return True
        entry = cache.lookup(rel, st) if cache.old else None
        if entry is not None and all(w.known(c[0]) for c in entry[4]):
            chunks, extents, xattrs = entry[4], entry[5], entry[6]
            cache.keep(rel, entry)
            r.files_from_cache += 1
        else:
            got = self._read(rel, abspath, st, w)
            if got is None:
                return False
            chunks, extents, xattrs, cacheable, size = got
            item["size"] = size
            r.files_read += 1
            if cacheable:
                cache.remember(rel, st, chunks, extents, xattrs)
        item["chunks"] = chunks
        if extents is not None:
            item["sparse"] = extents
        if xattrs:
            item["xattrs"] = xattrs
        r.bytes_total += item["size"]
        if st.st_nlink > 1:
            self.hardlinks[(st.st_dev, st.st_ino)] = item
        return True

    def _read(self, rel: str, abspath: str, st: os.stat_result, w: Any):
        """Read and chunk one file. Returns ``(chunks, extents, xattrs, cacheable, size)`` or
        ``None`` (with a warning) if it cannot be read."""
        try:
            try:
                fd = os.open(abspath, _READ_FLAGS | _O_NOATIME)
            except PermissionError:
                # O_NOATIME is only allowed for the file's owner (or root).
                fd = os.open(abspath, _READ_FLAGS)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None  # vanished between listing and open: not part of this backup
            self.warnings.add(f"{rel}: cannot read: {e.strerror}")
            return None
        try:
            return self._read_fd(fd, rel, st, w)
        except OSError as e:
            self.warnings.add(f"{rel}: read error: {e.strerror}")
            return None
        finally:
            os.close(fd)

    def _read_fd(self, fd: int, rel: str, st: os.stat_result, w: Any):
        size = st.st_size
        extents = None
        if size > 0 and st.st_blocks * 512 < size:
            extents = data_extents(fd, size)
        chunks: list = []
        total = 0
        if extents is None:
            if size <= self.small_file:
                data = os.read(fd, self.small_file + 1)
                if data:
                    chunks.append(_ref(w.add_chunk(data)))
                total = len(data)
            else:
                for data in self.repo.cdc_chunks(_Limited(fd, 0, 1 << 62)):
                    chunks.append(_ref(w.add_chunk(data)))
                    total += len(data)
        else:
            for off, length in extents:
                for data in self.repo.cdc_chunks(_Limited(fd, off, length)):
                    chunks.append(_ref(w.add_chunk(data)))
                    total += len(data)
        self.result.bytes_read += total
        xattrs = read_xattrs(fd, rel, st.st_dev, self.warnings)
        end = os.fstat(fd)
        expected = size if extents is None else sum(e[1] for e in extents)
        if (
            end.st_ino != st.st_ino
            or end.st_size != size
            or end.st_mtime_ns != st.st_mtime_ns
            or total != expected
        ):
            self.warnings.add(f"{rel}: file changed while being backed up")
            size = total if extents is None else size
            return chunks, extents, xattrs, False, size
        cacheable = (
            st.st_mtime_ns < self.start_ns - RACY_NS and st.st_ctime_ns < self.start_ns - RACY_NS
        )
        return chunks, extents, xattrs, cacheable, size
