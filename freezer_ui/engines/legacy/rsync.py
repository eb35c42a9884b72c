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

Encrypted rsyncv2 (``freezer.utils.crypt``, not openssl): ``Salted__`` + 8-byte salt, then the
compressed stream under AES-256-CFB with key and IV from EVP_BytesToKey(MD5) of the passphrase
file's first line *with* its newline (``readline()``). The agent starts a fresh CFB stream, same
IV, for every segment it uploads (every ``max_segment_size`` bytes of input, 32 MiB by default)
and keeps no boundaries, so only a level written as one segment can be decrypted — which is
also all upstream's own restore can do; a longer one fails as corrupt, with that reason.

The older rsync v1 format (same engine directory and ``engine_name``, no ``rsync_block_size``
in the metadata) is read by rsync_v1.py.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from .discovery import Generation
from .errors import CorruptArchive, TruncatedArchive, UnsupportedBackup, WrongPassphrase
from .extract import TreeWriter
from .stream import CHUNK, ChunkReader, decompress, decrypt, file_chunks
from .tarstream import Member

# A header list is held in memory (upstream does the same); bound it against garbage input.
MAX_HEADER_BYTES = 512 * 1024 * 1024
RSYNC_COMPRESSION = {"gzip": "zlib", "bzip2": "bzip2"}


def check_supported(g: Generation) -> None:
    meta = g.metadata
    if "rsync_block_size" not in meta:
        raise UnsupportedBackup(f"{g.data_path}: an rsync v1 backup (see rsync_v1.py)")
    bs = meta.get("rsync_block_size")
    if not isinstance(bs, int) or isinstance(bs, bool) or not 0 < bs <= 1 << 30:
        raise UnsupportedBackup(f"{g.data_path}: bad rsync_block_size {bs!r}")
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


def _plain(
    g: Generation, passphrase: bytes | None, counter: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    raw: Iterator[bytes] = file_chunks(g.data_path, counter)
    if passphrase is not None:
        raw = decrypt(raw, passphrase, "md5", str(g.data_path))
    return decompress(raw, RSYNC_COMPRESSION[g.compression], str(g.data_path))


PROBE_BYTES = 4096


def bzip2_head_ok(head: bytes) -> bool | None:
    """Whether bytes start like a bzip2 stream: magic + level digit, then the first block's
    magic (pi in BCD); None when they are too short to tell."""
    if len(head) < 10:
        return None if b"BZh".startswith(head[:3]) else False
    return head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY"


def looks_right(head: bytes, compression: str) -> bool | None:
    """Whether decrypted bytes start like this level's compressed msgpack header list; None
    when they start right but end before anything can be decompressed (cut short)."""
    if compression == "bzip2":
        return bzip2_head_ok(head)
    try:
        out = zlib.decompressobj().decompress(head, 16)
    except zlib.error:
        return False
    if not out:
        return None
    return 0x90 <= out[0] <= 0x9F or out[0] in (0xDC, 0xDD)


def probe_passphrase(
    g: Generation,
    candidates: list[bytes],
    check: Callable[[bytes, str], bool | None] = looks_right,
    plain: Callable[[bytes, bytes, str], bytes] | None = None,
) -> bytes:
    """The candidate that decrypts ``g``, judged on the start of the data only (the level may
    hold several separately encrypted segments; the first is what can be checked).

    Candidates: the first line with and without its newline (the agent keeps it; a passphrase
    from a secret store usually has none). A wrong key fails the compressor's header check.
    ``check`` judges the decrypted start, ``plain(head, key, source)`` decrypts it (default:
    one stream; rsync v1 restarts the cipher after zlib's header)."""
    with open(g.data_path, "rb") as f:
        head = f.read(16 + PROBE_BYTES)
    if len(head) < 17:
        raise TruncatedArchive(str(g.data_path), "encrypted data ends inside its first bytes")
    short = False
    for key in candidates:
        if plain is None:
            start = b"".join(decrypt([head], key, "md5", str(g.data_path)))
        else:
            start = plain(head, key, str(g.data_path))
        verdict = check(start, g.compression or "")
        if verdict:
            return key
        short = short or (verdict is None and len(head) < 16 + PROBE_BYTES)
    if short:
        raise TruncatedArchive(str(g.data_path), "encrypted data ends inside its first bytes")
    raise WrongPassphrase(
        str(g.data_path), "wrong passphrase (decrypted data is not a valid rsync stream)"
    )


def apply(
    g: Generation,
    writer: TreeWriter,
    counter: Callable[[int], None] | None = None,
    passphrase: bytes | None = None,
) -> None:
    """Apply one rsyncv2 generation (any level) to the tree being restored by ``writer``."""
    source = str(g.data_path)
    chunks = _plain(g, passphrase if g.encrypted else None, counter)
    if g.encrypted:
        chunks = explain_corruption(chunks, source, SEGMENTS_EXPLAINED)
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


SEGMENTS_EXPLAINED = (
    "if this level wrote more than one segment (max_segment_size, 32 MiB by default), upstream "
    "restarted AES-CFB for each without recording where, and it cannot be decrypted (upstream's "
    "own restore cannot either)"
)


def explain_corruption(chunks: Iterator[bytes], source: str, why: str) -> Iterator[bytes]:
    """Corruption after a good start of an encrypted level: add the likely cause ``why``
    (the agent restarted its cipher at boundaries it did not record)."""
    try:
        yield from chunks
    except TruncatedArchive:
        raise
    except CorruptArchive as e:
        raise CorruptArchive(source, f"{e.reason} — {why}") from None
