"""Backups of upstream Freezer's ``rsyncv2`` engine, every level.

What an rsyncv2 level 0 stores (read from freezer 19.0.0, checked against its own output):
``data`` is one compressed stream — "gzip" means a *zlib* stream (``zlib.compressobj(9)``), or
bzip2 — holding a msgpack list of per-entry headers ``{path, inode: {mode, mtime, size, ...},
lname?}`` in ``os.walk`` order, followed by the contents of the regular files, concatenated in
header order, each exactly ``inode.size`` bytes. Hard links are stored as separate files.

Above level 0 the same list holds only what changed since the previous level (``os.walk``
order, then ``{path, deleted: True}`` for every path the previous level had and this one lacks),
and the data holds, per regular-file entry, either the whole file or — when the entry carries
``deltas: [len_deltas, [block indices]]`` — only the changed blocks: block ``i`` is the file's
bytes at ``i * rsync_block_size``, ``min(block size, size - offset)`` long (``rsyncdelta_fast``
compares blocks at the same index only, so a block either matches in place or is stored). The
file is then cut to ``inode.size`` (truncation). Renames are a deletion plus a new entry.

Not supported (refused before anything is written): encrypted rsyncv2 (19.0.0 cannot write it on
Python 3, and encrypts each segment with a fresh CFB stream, see docs/legacy.md) and the older
rsync v1 format.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from .discovery import Generation
from .errors import CorruptArchive, TruncatedArchive, UnsupportedBackup
from .extract import TreeWriter
from .stream import CHUNK, ChunkReader, decompress, file_chunks
from .tarstream import Member

# A header list is held in memory (upstream does the same); bound it against garbage input.
MAX_HEADER_BYTES = 512 * 1024 * 1024
RSYNC_COMPRESSION = {"gzip": "zlib", "bzip2": "bzip2"}


def check_supported(g: Generation) -> None:
    meta = g.metadata
    if "rsync_block_size" not in meta:
        raise UnsupportedBackup(f"{g.data_path}: rsync v1 backups are not supported yet")
    bs = meta.get("rsync_block_size")
    if not isinstance(bs, int) or isinstance(bs, bool) or not 0 < bs <= 1 << 30:
        raise UnsupportedBackup(f"{g.data_path}: bad rsync_block_size {bs!r}")
    if g.encrypted:
        raise UnsupportedBackup(f"{g.data_path}: encrypted rsyncv2 backups are not supported yet")
    if g.compression not in RSYNC_COMPRESSION:
        raise UnsupportedBackup(f"{g.data_path}: rsyncv2 compression {g.compression!r}")


def _norm(obj: Any) -> Any:
    """Python-2-era agents packed str as msgpack raw: accept bytes keys/values as well."""
    if isinstance(obj, dict):
        return {(k.decode() if isinstance(k, bytes) else k): _norm(v) for k, v in obj.items()}
    return obj


def _text(v: Any) -> str:
    return os.fsdecode(v) if isinstance(v, bytes) else str(v)


def _deltas(h: dict[str, Any], size: int, bs: int, source: str) -> list[tuple[int, int]]:
    """``deltas: [len_deltas, [block indices]]`` → [(offset, length)], checked for consistency."""
    d = h.get("deltas")
    try:
        total, blocks = int(d[0]), [int(i) for i in d[1]]  # type: ignore[index]
    except (TypeError, ValueError, IndexError, KeyError):
        raise CorruptArchive(source, f"bad rsyncv2 deltas for {h['path']!r:.200}") from None
    pieces = []
    for i in blocks:
        off = i * bs
        if i < 0 or off >= size:
            raise CorruptArchive(source, f"rsyncv2 block {i} lies outside {h['path']!r:.200}")
        pieces.append((off, min(bs, size - off)))
    if sum(n for _, n in pieces) != total or sorted(set(blocks)) != blocks:
        raise CorruptArchive(source, f"inconsistent rsyncv2 deltas for {h['path']!r:.200}")
    return pieces


def apply(g: Generation, writer: TreeWriter, counter: Callable[[int], None] | None = None) -> None:
    """Apply one rsyncv2 generation (any level) to the tree being restored by ``writer``."""
    source = str(g.data_path)
    chunks = decompress(file_chunks(g.data_path, counter), RSYNC_COMPRESSION[g.compression], source)
    unpacker = msgpack.Unpacker(raw=True, max_buffer_size=MAX_HEADER_BYTES, strict_map_key=False)
    buf = bytearray()
    headers: Any = None
    try:
        for chunk in chunks:
            buf += chunk
            if len(buf) > MAX_HEADER_BYTES:
                raise CorruptArchive(source, "rsyncv2 header list is implausibly large")
            unpacker.feed(chunk)
            try:
                headers = unpacker.unpack()
            except msgpack.OutOfData:
                continue
            break
    except (ValueError, msgpack.UnpackException, msgpack.ExtraData) as e:
        raise CorruptArchive(source, f"rsyncv2 header list is not valid msgpack: {e}") from None
    if headers is None:
        raise TruncatedArchive(source, "stream ends inside the rsyncv2 header list")
    if not isinstance(headers, list):
        raise CorruptArchive(source, "rsyncv2 header is not a list")
    rest = bytes(buf[unpacker.tell() :])
    del buf

    def stream() -> Iterator[bytes]:
        if rest:
            yield rest
        yield from chunks

    reader = ChunkReader(stream())

    def data(size: int, name: str) -> Iterator[bytes]:
        left = size
        while left:
            b = reader.read(min(left, CHUNK))
            if not b:
                raise TruncatedArchive(source, f"stream ends inside the data of {name!r}")
            left -= len(b)
            yield b

    bs = int(g.metadata["rsync_block_size"])
    for raw in headers:
        h = _norm(raw)
        if not isinstance(h, dict) or "path" not in h:
            raise CorruptArchive(source, f"bad rsyncv2 header entry {raw!r:.200}")
        inode = h.get("inode")
        if h.get("deleted"):
            if g.level > 0:
                writer.delete(_text(h["path"]))
            continue
        if not isinstance(inode, dict):
            continue
        try:
            mode = int(inode["mode"])
            mtime = int(float(inode.get("mtime", 0)))
            size = int(inode.get("size", 0))
        except (KeyError, TypeError, ValueError):
            raise CorruptArchive(source, f"bad rsyncv2 inode for {h['path']!r:.200}") from None
        name = _text(h["path"])
        fmt = stat.S_IFMT(mode)
        typ = {
            stat.S_IFREG: b"0",
            stat.S_IFDIR: b"5",
            stat.S_IFLNK: b"2",
            stat.S_IFIFO: b"6",
            stat.S_IFCHR: b"3",
            stat.S_IFBLK: b"4",
        }.get(fmt)
        if typ is None:
            continue  # sockets: upstream skips them too
        member = Member(
            name=name,
            type=typ,
            mode=stat.S_IMODE(mode),
            uid=-1,  # rsyncv2 records owner names only; -1 leaves the id unchanged
            gid=-1,
            uname=_text(inode.get("uname", "")),
            gname=_text(inode.get("gname", "")),
            size=size if typ == b"0" else 0,
            mtime=mtime,
            linkname=_text(h.get("lname", "")),
        )
        if typ == b"0" and g.level > 0 and h.get("new_level") and h.get("deltas"):
            pieces = [(off, data(n, name)) for off, n in _deltas(h, size, bs, source)]
            writer.patch(member, iter(pieces))
            for _, body in pieces:  # a skipped (hostile) member's data must still be consumed
                for _ in body:
                    pass
            continue
        body = data(member.size, name)
        writer.apply(member, body)
        for _ in body:  # a skipped (hostile) member's data must still be consumed
            pass
    if reader.read(1):
        raise CorruptArchive(source, "data continues after the last rsyncv2 file")
