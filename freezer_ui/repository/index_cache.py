"""A local, checksummed copy of the merged chunk index that opens in milliseconds.

Loading the index from the repository means fetching, decrypting and parsing every
``index/*`` object and building a dict of every chunk: about 0.3 s and ~10 MB per 60k chunks,
on every backup, even when nothing is new.  This file holds the same merged index as a
sorted array of chunk ids, memory-mapped and searched in place, so an incremental backup
neither parses the index nor keeps it in Python objects: its memory does not grow with the
repository (only the pages a lookup touches are resident, and they are file-backed).

It is a cache, never a source of truth:

- It names the repository id, every index object it was built from and every pack those
  objects list.  It is used only if the repository has *all* those index objects (none
  removed: prune compacts by writing new ones and deleting old ones), all those packs still
  exist, and none of the packs that were missing at build time has come back.  Index objects
  added since (another client's backup) are parsed as usual and merged on top.
- The whole file is checked against a BLAKE3 digest in its trailer before any of it is
  used; a file that fails any check is discarded with a warning and rebuilt.
- It is replaced atomically (temp file + rename), so a crash leaves the old or the new one.

Layout (little-endian), version 1::

    magic "FZUIIXC1" | u32 version | u32 n_index | u32 n_packs | u32 n_missing | u64 n_chunks
    repo id (16) | index ids (16 each, sorted) | pack ids (32 each; a chunk names its pack by
    position) | missing pack ids (32 each) | fanout: 65537 x u32, fanout[b] = chunks whose
    id's first two bytes are < b | chunk ids (32 each, sorted) | locations (pack no u32,
    offset u64, length u64, size u32 per chunk) | BLAKE3 of everything before (32)
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

import blake3

MAGIC = b"FZUIIXC1"
VERSION = 1
_HEAD = struct.Struct("<8sIIIIQ")
_LOC = struct.Struct("<IQQI")
_FAN = struct.Struct("<II")
FANOUT = 1 << 16
ID_LEN = 32
OBJ_ID_LEN = 16
DIGEST_LEN = 32


class IndexCacheError(Exception):
    """The cache file is unusable (corrupt, truncated, foreign): rebuild it."""


Location = tuple[bytes, int, int, int]  # pack id, offset, length, size


class MappedIndex:
    """A validated cache file, memory-mapped.  Lookups touch a few pages; nothing is
    decoded up front."""

    def __init__(self, path: Path, repo_id: bytes) -> None:
        self.path = path
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < _HEAD.size + OBJ_ID_LEN + DIGEST_LEN:
                raise IndexCacheError("truncated")
            head = f.read(_HEAD.size)
            magic, version, n_index, n_packs, n_missing, n = _HEAD.unpack(head)
            if magic != MAGIC or version != VERSION:
                raise IndexCacheError("not a version 1 index cache")
            expected = (
                _HEAD.size
                + OBJ_ID_LEN * (1 + n_index)
                + ID_LEN * (n_packs + n_missing)
                + 4 * (FANOUT + 1)
                + (ID_LEN + _LOC.size) * n
                + DIGEST_LEN
            )
            if size != expected:
                raise IndexCacheError(f"size {size}, expected {expected}")
            # Checked by reading, not through the map: hashing the map would make every
            # page of it resident in this process.
            f.seek(0)
            h = blake3.blake3()
            left = size - DIGEST_LEN
            buf = bytearray(1 << 20)
            while left:
                k = f.readinto(memoryview(buf)[: min(left, len(buf))])
                if not k:
                    raise IndexCacheError("truncated")
                h.update(memoryview(buf)[:k])
                left -= k
            if f.read(DIGEST_LEN) != h.digest():
                raise IndexCacheError("checksum mismatch")
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            mm = self._mm
            pos = _HEAD.size
            if mm[pos : pos + OBJ_ID_LEN] != repo_id:
                self.close()
                raise IndexCacheError("built for another repository")
            pos += OBJ_ID_LEN
            self.index_ids = [mm[pos + i * 16 : pos + i * 16 + 16] for i in range(n_index)]
            pos += OBJ_ID_LEN * n_index
            self.pack_ids = [mm[pos + i * 32 : pos + i * 32 + 32] for i in range(n_packs)]
            pos += ID_LEN * n_packs
            self.missing = {mm[pos + i * 32 : pos + i * 32 + 32] for i in range(n_missing)}
            pos += ID_LEN * n_missing
            self._fan_off = pos
            # The fanout and the ids are what every lookup reads: plain in-process copies
            # (4 B per bucket, 32 B per chunk) search faster than the map, and read with
            # pread they do not also stay resident as mapped pages.  The locations (only
            # restores ask for them) stay in the map.
            self._fan = array("I", os.pread(f.fileno(), 4 * (FANOUT + 1), pos))
            if sys.byteorder != "little":
                self._fan.byteswap()
            pos += 4 * (FANOUT + 1)
            self._ids_off = pos
            self._ids = os.pread(f.fileno(), ID_LEN * n, pos)
            if len(self._ids) != ID_LEN * n:
                raise IndexCacheError("truncated")
        self._locs_off = pos + ID_LEN * n
        self.n = n
        self.pack_set = set(self.pack_ids)

    def close(self) -> None:
        try:
            self._mm.close()
        except (AttributeError, BufferError):
            pass

    def find(self, cid: object) -> int:
        """The position of ``cid`` in the sorted ids, or -1."""
        if type(cid) is not bytes or len(cid) != ID_LEN:
            return -1
        fan = self._fan
        b = (cid[0] << 8) | cid[1]
        end = ID_LEN * fan[b + 1]
        ids = self._ids
        pos = ids.find(cid, ID_LEN * fan[b], end)
        # ids are fixed-size records: a match must start on a record boundary
        while pos >= 0 and pos % ID_LEN:
            pos = ids.find(cid, pos + 1, end)
        return pos if pos < 0 else pos // ID_LEN

    def location(self, i: int) -> Location:
        no, offset, length, size = _LOC.unpack_from(self._mm, self._locs_off + _LOC.size * i)
        return (self.pack_ids[no], offset, length, size)

    def iter_ids(self) -> Iterator[bytes]:
        ids = self._ids
        for i in range(self.n):
            yield ids[ID_LEN * i : ID_LEN * (i + 1)]

    def entries(self) -> Iterator[tuple[bytes, int, int, int, int]]:
        """``(chunk id, pack no, offset, length, size)`` of every chunk, in id order."""
        mm, ids, locs = self._mm, self._ids, self._locs_off
        unpack = _LOC.unpack_from
        for i in range(self.n):
            yield (ids[ID_LEN * i : ID_LEN * (i + 1)], *unpack(mm, locs + _LOC.size * i))


def _bucket(cid: bytes) -> int:
    return (cid[0] << 8) | cid[1]


def build_regions(chunks: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes, bytes]:
    """Fanout, ids and locations regions from ``(id, packed location)`` pairs sorted by id."""
    counts = [0] * (FANOUT + 1)
    for c in chunks:
        counts[_bucket(c[0]) + 1] += 1
    total = 0
    for b in range(FANOUT + 1):
        total += counts[b]
        counts[b] = total
    return (
        struct.pack(f"<{FANOUT + 1}I", *counts),
        b"".join([c[0] for c in chunks]),
        b"".join([c[1] for c in chunks]),
    )


def merge_regions(base: MappedIndex, new: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes, bytes]:
    """``base``'s regions with ``new`` (sorted, none of them in ``base``) merged in: the
    cost is one copy of the file plus a search per new chunk, not a sort of everything."""
    mm, ids, locs_off = base._mm, base._ids, base._locs_off
    fan = list(base._fan)
    id_parts: list[bytes] = []
    loc_parts: list[bytes] = []
    prev = 0
    add = [0] * (FANOUT + 1)
    for cid, loc in new:
        b = _bucket(cid)
        add[b + 1] += 1
        lo, hi = fan[b], fan[b + 1]
        while lo < hi:  # first position whose id is greater
            mid = (lo + hi) // 2
            if ids[ID_LEN * mid : ID_LEN * (mid + 1)] < cid:
                lo = mid + 1
            else:
                hi = mid
        id_parts.append(ids[ID_LEN * prev : ID_LEN * lo])
        loc_parts.append(mm[locs_off + _LOC.size * prev : locs_off + _LOC.size * lo])
        id_parts.append(cid)
        loc_parts.append(loc)
        prev = lo
    id_parts.append(ids[ID_LEN * prev :])
    loc_parts.append(mm[locs_off + _LOC.size * prev : locs_off + _LOC.size * base.n])
    total = 0
    for b in range(FANOUT + 1):
        total += add[b]
        fan[b] += total
    return struct.pack(f"<{FANOUT + 1}I", *fan), b"".join(id_parts), b"".join(loc_parts)


def pack_location(no: int, offset: int, length: int, size: int) -> bytes:
    """Raises ``struct.error`` when a value does not fit (then there is no cache)."""
    return _LOC.pack(no, offset, length, size)


def write_cache(
    path: Path,
    repo_id: bytes,
    index_ids: Iterable[bytes],
    pack_ids: list[bytes],
    missing: Iterable[bytes],
    regions: tuple[bytes, bytes, bytes],
) -> None:
    """Write a cache file atomically (``regions`` from :func:`build_regions` or
    :func:`merge_regions`, with packs numbered by their position in ``pack_ids``)."""
    index_ids = sorted(index_ids)
    missing = sorted(missing)
    fan, ids, locs = regions
    parts = [
        _HEAD.pack(MAGIC, VERSION, len(index_ids), len(pack_ids), len(missing), len(ids) // ID_LEN),
        repo_id,
        *index_ids,
        *pack_ids,
        *missing,
        fan,
        ids,
        locs,
    ]
    h = blake3.blake3()
    for p in parts:
        h.update(p)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for p in parts:
                f.write(p)
            f.write(h.digest())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
