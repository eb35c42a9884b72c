"""The files cache: lets an unchanged file cost one ``lstat`` instead of a full read.

An entry says what the last backup stored for a path (relative to the backup source)::

    path -> [inode, size, mtime_ns, ctime_ns, chunks, extents, xattrs, atime_ns]

``chunks`` is the list of ``[chunk_id, size]`` pairs the manifest needs, ``extents`` the data
extents of a sparse file (``None`` when not sparse), ``xattrs`` a dict or ``None``. An entry is
used only if all four stat fields match (ctime catches chmod/chown/xattr changes and writes that
restore mtime) *and* the repository still knows every chunk (after a prune it may not).

Nothing is loaded into memory.  The file holds the entries in the order the walk meets the
paths (sorted pre-order), and a run reads it front to back *while* it walks: a lookup compares
the path with the next record, so memory stays one read buffer whatever the tree's size.
Records of files that are gone are skipped on the way; a record that is out of order is only
a miss (the file is read again), never a wrong answer.  An unchanged file's record is copied to
the new file as it was read, undecoded.

A run records entries in two streams, each in walk order: files found unchanged (recorded
while walking) and files read (recorded as their reads complete, a window behind the walk).
They are the two segments of the file, and the next run follows both.  New entries go to
anonymous temporary files in the cache directory as they come (no memory growth, nothing left
behind by a crash); ``save`` writes header, segments and trailer to a temporary name and
renames it, so the file is the old one or the new one, whole.

Layout (little-endian), version 3::

    "FZUIFC03" | u32 len + identity (repository id / source digest, as in the path)
    segment A, segment B: records  u32 path len | u32 body len | u64 ino | u64 size |
        i64 mtime_ns | i64 ctime_ns | path (UTF-8, surrogateescape) |
        body (msgpack [chunks, extents, xattrs, atime_ns])
    "FZUIFCND" | u64 count A | u64 bytes A | u64 count B | u64 bytes B | BLAKE3 of all before

The whole file is checked against its digest before any entry is used; a missing file is an
empty cache, a corrupt, truncated or foreign one is discarded with a warning.  The worst case
is a full re-read, never a wrong backup.

``atime_ns`` is the access time when the content was read. An unchanged file is recorded with
it, not with its current atime: any reader (another backup tool, a search indexer) moves atimes
without changing anything else, and recording those moves would make the item stream of an
unchanged tree differ, and be stored again, on every run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import msgpack

FORMAT_VERSION = 3
CACHE_NAME = "files.v3"
_LEGACY_NAMES = ("files.msgpack",)  # version 2: one msgpack map, loaded whole
_MAGIC = b"FZUIFC03"
_TRAILER_MAGIC = b"FZUIFCND"
_REC = struct.Struct("<IIQQqq")
_TRAILER = struct.Struct("<8sQQQQ32s")
_LEN = struct.Struct("<I")
_READ_BLOCK = 64 << 10  # per segment being followed: ~700 records parsed at a time
_WRITE_BLOCK = 256 << 10  # per segment being written, and per read when checking

# msgpack cannot carry lone surrogates (non-UTF-8 file names decoded with surrogateescape);
# round-tripping them through the same error handler keeps such names cacheable.
_UNICODE_ERRORS = "surrogateescape"

Entry = list  # [ino, size, mtime_ns, ctime_ns, chunks, extents, xattrs, atime_ns]

_log = logging.getLogger(__name__)


class CacheFileError(Exception):
    """The cache file cannot be trusted (corrupt, truncated, foreign, another version)."""


def _packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, unicode_errors=_UNICODE_ERRORS)


def _record(path: str, ino: int, size: int, mtime_ns: int, ctime_ns: int, body: bytes) -> bytes:
    p = path.encode("utf-8", _UNICODE_ERRORS)
    return _REC.pack(len(p), len(body), ino, size, mtime_ns, ctime_ns) + p + body


def _walk_key(path: str) -> list[str]:
    # The walk's order: pre-order, siblings sorted by name, i.e. the paths' components
    # compared one by one ("a/b" before "a.c", although "." < "/").
    return path.split("/")


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "freezer-ui"


def cache_path(repo_id: str, source: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the files cache of (repository, absolute source path) lives."""
    root = Path(cache_dir) if cache_dir else default_cache_root()
    digest = hashlib.blake2b(os.fsencode(os.path.abspath(source)), digest_size=16).hexdigest()
    return root / str(repo_id) / digest / CACHE_NAME


def _identity(path: Path) -> bytes:
    # The repository id and the source digest, as cache_path put them in the path: a file
    # copied or moved to another repository's or source's place is not trusted there.
    return f"{path.parent.parent.name}/{path.parent.name}".encode()


class _Segment:
    """The records of one segment, front to back, through a bounded read buffer.  Records
    are parsed a buffer at a time into ``recs``; ``recs[i]`` is the next one (the head)."""

    def __init__(self, fd: int, start: int, length: int, count: int) -> None:
        self.fd = fd
        self.pos = start  # file offset of the end of ``buf``
        self.end = start + length
        self.left = count  # records not yet parsed
        self.buf = b""
        # (path, ino, size, mtime_ns, ctime_ns, raw record, body offset in raw)
        self.recs: list[tuple] = []
        self.i = 0

    @property
    def head(self) -> tuple | None:
        if self.i >= len(self.recs) and not self.refill():
            return None
        return self.recs[self.i]

    def refill(self) -> bool:
        """Parse the next buffer's records; ``False`` at the end of the segment."""
        if self.left <= 0:
            return False
        buf = self.buf
        need, sized = _REC.size, False
        while True:  # at least one whole record in the buffer
            if not sized and len(buf) >= _REC.size:
                plen, blen = _REC.unpack_from(buf)[:2]
                need, sized = _REC.size + plen + blen, True
            if len(buf) >= need and sized:
                break
            want = min(max(need - len(buf), _READ_BLOCK), self.end - self.pos)
            more = os.pread(self.fd, want, self.pos) if want > 0 else b""
            if not more:
                raise CacheFileError("segment ends inside a record")
            self.pos += len(more)
            buf += more
        recs = []
        append = recs.append
        unpack = _REC.unpack_from
        size = _REC.size
        off, n, left = 0, len(buf), self.left
        while left and off + size <= n:
            plen, blen, ino, fsize, mtime_ns, ctime_ns = unpack(buf, off)
            total = size + plen + blen
            if off + total > n:
                break
            raw = buf[off : off + total]
            append(
                (
                    raw[size : size + plen].decode("utf-8", _UNICODE_ERRORS),
                    ino,
                    fsize,
                    mtime_ns,
                    ctime_ns,
                    raw,
                    size + plen,
                )
            )
            off += total
            left -= 1
        self.left = left
        self.buf = buf[off:]
        self.recs = recs
        self.i = 0
        return bool(recs)

    def advance(self) -> None:
        self.i += 1


class FilesCache:
    """Old entries are followed along the walk (:meth:`lookup`); new entries (:meth:`keep`,
    :meth:`remember`) are saved as the next run's cache (:meth:`save`)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.warning: str | None = None  # why an existing cache file was not used
        self._fd: int | None = None
        self._segments: tuple[_Segment, ...] = ()
        self._first: _Segment | None = None
        self._second: _Segment | None = None
        # whether old entries may remain (a lookup is pointless otherwise)
        self.old = False
        self._last: tuple[str, Entry, bytes] | None = None
        # new entries per segment: 0 = unchanged files (walk order), 1 = files read
        # (completion order, which is walk order too)
        self._out = (bytearray(), bytearray())
        self._files: list[Any] = [None, None]
        self._counts = [0, 0]
        self._sizes = [0, 0]
        self._body_error: OSError | None = None

    @property
    def new_count(self) -> int:
        return self._counts[0] + self._counts[1]

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None) -> FilesCache:
        """The cache at ``path``: empty if there is none; if the file cannot be trusted it is
        ignored and ``warning`` says why (also logged)."""
        cache = cls(path)
        if path is None:
            return cache
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return cache
        except OSError as e:
            cache._discard(f"cannot be read: {e.strerror}")
            return cache
        try:
            cache._segments = _open_segments(fd, _identity(path))
            cache._fd = fd
            a, b = cache._segments
            cache._first, cache._second = (a, b) if a.left >= b.left else (b, a)
            cache.old = any(seg.head is not None for seg in cache._segments)
        except (OSError, CacheFileError, struct.error, UnicodeDecodeError) as e:
            os.close(fd)
            cache._segments = ()
            cache._first = cache._second = None
            cache.old = False
            cache._discard(str(e) if not isinstance(e, OSError) else e.strerror or str(e))
        return cache

    def _discard(self, why: str) -> None:
        self.warning = f"files cache {self.path} ignored ({why}): every file is read again"
        _log.warning("%s", self.warning)

    def paths(self) -> Iterator[str]:
        """The paths of the old entries not yet passed (consumes them: for tests and tools)."""
        for seg in self._segments:
            while (h := seg.head) is not None:
                yield h[0]
                seg.advance()

    def lookup(self, path: str, st: os.stat_result) -> Entry | None:
        """The old entry for ``path`` if its stat fields match ``st``; otherwise ``None``.
        Called in walk order: records before ``path`` (files gone since) are passed."""
        rec = None
        try:
            # The usual case, inlined: the next record of the larger segment (of the other
            # one, right after a run that read most files) is this path.
            a = self._first
            if a is not None and a.i < len(a.recs) and a.recs[a.i][0] == path:
                rec = a.recs[a.i]
                a.i += 1
            else:
                b = self._second
                if b is not None and b.i < len(b.recs) and b.recs[b.i][0] == path:
                    rec = b.recs[b.i]
                    b.i += 1
                else:
                    rec = self._seek(path)
        except (OSError, CacheFileError, struct.error) as e:
            # checked whole at load: only a file changed under us gets here
            self._segments = ()
            self._first = self._second = None
            self.old = False
            self._discard(str(e))
            return None
        if rec is None:
            return None
        _, ino, size, mtime_ns, ctime_ns, raw, body = rec
        if (
            ino != st.st_ino
            or size != st.st_size
            or mtime_ns != st.st_mtime_ns
            or ctime_ns != st.st_ctime_ns
        ):
            return None
        try:
            b = msgpack.unpackb(raw[body:], raw=False, unicode_errors=_UNICODE_ERRORS)
        except (ValueError, msgpack.UnpackException, msgpack.OutOfData):
            return None
        if type(b) is not list or len(b) != 4:
            return None
        e = [ino, size, mtime_ns, ctime_ns, b[0], b[1], b[2], b[3]]
        self._last = (path, e, raw)
        return e

    def _seek(self, path: str) -> tuple | None:
        for seg in self._segments:
            h = seg.head
            if h is not None and h[0] == path:
                seg.advance()
                return h
        key = _walk_key(path)
        found = None
        for seg in self._segments:
            while (h := seg.head) is not None and _walk_key(h[0]) < key:
                seg.advance()  # a file that is gone
            if found is None and h is not None and h[0] == path:
                seg.advance()
                found = h
        if all(seg.head is None for seg in self._segments):
            self.old = False
        return found

    # -- recording ----------------------------------------------------------------------------

    def _add(self, seg: int, raw: bytes) -> None:
        if self.path is None or self._body_error is not None:
            return  # no cache file, or it cannot be written: nothing to save
        out = self._out[seg]
        out += raw
        self._counts[seg] += 1
        self._sizes[seg] += len(raw)
        if len(out) >= _WRITE_BLOCK:
            self._spill(seg)

    def _spill(self, seg: int) -> None:
        out = self._out[seg]
        try:
            if self._files[seg] is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
                self._files[seg] = tempfile.TemporaryFile(dir=self.path.parent)  # type: ignore[union-attr]
            self._files[seg].write(out)
        except OSError as e:
            # A cache that cannot be written must not fail the backup: save() reports it.
            self._body_error = e
        out.clear()

    def keep(self, path: str, entry: Entry) -> None:
        last = self._last
        if last is not None and last[0] == path and last[1] is entry:
            self._add(0, last[2])  # unchanged: the record as read
        else:
            self._add(0, _record(path, *entry[:4], _packb(entry[4:8])))
        self._last = None

    def remember(
        self,
        path: str,
        st: os.stat_result,
        chunks: list,
        extents: list | None,
        xattrs: dict | None,
    ) -> None:
        body = _packb([chunks, extents, xattrs, st.st_atime_ns])
        self._add(1, _record(path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, body))

    # -- saving -------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the new entries atomically (temp file + rename)."""
        if self.path is None:
            return
        try:
            if self._body_error is not None:
                raise self._body_error
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            identity = _identity(self.path)
            head = _MAGIC + _LEN.pack(len(identity)) + identity
            h = blake3.blake3(head)
            try:
                with open(tmp, "wb") as f:
                    f.write(head)
                    for seg in (0, 1):
                        tf = self._files[seg]
                        if tf is not None:
                            tf.seek(0)
                            while block := tf.read(_WRITE_BLOCK):
                                h.update(block)
                                f.write(block)
                        h.update(self._out[seg])
                        f.write(self._out[seg])
                    c, s = self._counts, self._sizes
                    f.write(_TRAILER.pack(_TRAILER_MAGIC, c[0], s[0], c[1], s[1], h.digest()))
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            for name in _LEGACY_NAMES:  # an older version's file would never be read again
                try:
                    os.unlink(self.path.with_name(name))
                except OSError:
                    pass
        finally:
            self.close()

    def close(self) -> None:
        for i, tf in enumerate(self._files):
            if tf is not None:
                tf.close()
                self._files[i] = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._segments = ()
            self._first = self._second = None
            self.old = False

    def stats(self) -> dict[str, Any]:
        return {"new_entries": self.new_count}


def _open_segments(fd: int, identity: bytes) -> tuple[_Segment, ...]:
    """Check a whole cache file (header, identity, trailer, digest) and return its two
    segments, positioned on their first records.  Raises CacheFileError."""
    size = os.fstat(fd).st_size
    head_min = len(_MAGIC) + _LEN.size
    if size < head_min + _TRAILER.size:
        raise CacheFileError("truncated")
    head = os.pread(fd, head_min, 0)
    if head[: len(_MAGIC)] != _MAGIC:
        raise CacheFileError(f"not a version {FORMAT_VERSION} files cache")
    (ilen,) = _LEN.unpack_from(head, len(_MAGIC))
    start = head_min + ilen
    if start + _TRAILER.size > size:
        raise CacheFileError("truncated")
    if os.pread(fd, ilen, head_min) != identity:
        raise CacheFileError("written for another repository or source")
    magic, n_a, len_a, n_b, len_b, digest = _TRAILER.unpack(
        os.pread(fd, _TRAILER.size, size - _TRAILER.size)
    )
    if magic != _TRAILER_MAGIC or start + len_a + len_b + _TRAILER.size != size:
        raise CacheFileError("truncated or damaged")
    # Read (not mapped) to check: the digest covers every byte before the trailer.
    h = blake3.blake3()
    pos, end = 0, size - _TRAILER.size
    while pos < end:
        block = os.pread(fd, min(_WRITE_BLOCK, end - pos), pos)
        if not block:
            raise CacheFileError("truncated")
        h.update(block)
        pos += len(block)
    if h.digest() != digest:
        raise CacheFileError("checksum mismatch")
    return (_Segment(fd, start, len_a, n_a), _Segment(fd, start + len_a, len_b, n_b))
