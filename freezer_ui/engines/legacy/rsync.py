"""Level-0 backups of upstream Freezer's ``rsyncv2`` engine.

What an rsyncv2 level 0 stores (read from freezer 19.0.0, checked against its own output):
``data`` is one compressed stream — "gzip" means a *zlib* stream (``zlib.compressobj(9)``), or
bzip2 — holding a msgpack list of per-entry headers ``{path, inode: {mode, mtime, size, ...},
lname?}`` in ``os.walk`` order, followed by the contents of the regular files, concatenated in
header order, each exactly ``inode.size`` bytes. Hard links are stored as separate files.

Not supported (refused before anything is written): increments (level > 0, block deltas),
encrypted rsyncv2 (19.0.0 cannot write it on Python 3), and the older rsync v1 format.
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
    if g.level != 0:
        raise UnsupportedBackup(
            f"{g.data_path}: rsyncv2 increments (level {g.level}) are not supported yet"
        )
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


def apply_level0(
    g: Generation, writer: TreeWriter, counter: Callable[[int], None] | None = None
) -> None:
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

    for raw in headers:
        h = _norm(raw)
        if not isinstance(h, dict) or "path" not in h:
            raise CorruptArchive(source, f"bad rsyncv2 header entry {raw!r:.200}")
        inode = h.get("inode")
        if h.get("deleted") or not isinstance(inode, dict):
            continue  # deletions only appear in increments
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
            uid=0,
            gid=0,
            size=size if typ == b"0" else 0,
            mtime=mtime,
            linkname=_text(h.get("lname", "")),
        )
        body = data(member.size, name)
        writer.apply(member, body)
        for _ in body:  # a skipped (hostile) member's data must still be consumed
            pass
    if reader.read(1):
        raise CorruptArchive(source, "data continues after the last rsyncv2 file")
