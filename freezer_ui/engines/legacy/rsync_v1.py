"""Backups of upstream Freezer's first ``rsync`` engine ("v1"), every level.

Read from freezer's ``freezer/engine/rsync/rsync.py`` (identical in 10.0.0–19.0.0; 7.0.0, the
Python 2 era, writes the same bytes) and checked against the output of 19.0.0 made to run on
Python 3 (docs/legacy.md, tools/legacy_patches/freezer-19.0.0-rsync-v1-py3.patch).

``data`` is one compressed stream — "gzip" is a bare zlib stream, or bzip2 — of records::

    <hlen>\\0<path>\\0<ver=1>\\0<mode>\\0<uid>\\0<gid>\\0<size>\\0<mtime>\\0<ctime>\\0<uname>\\0
    <gname>\\0<ftype>\\0<lname>\\0<inumber>\\0<nlink>\\0<devminor>\\0<devmajor>\\0<block size>\\0
    <level_id>\\0<deleted>

``hlen`` counts the whole header, its own digits included; ``ftype`` is r/d/l/p/c/b/u; ids are
``0000``/``1111``. A regular file's header is followed by its data: all ``size`` bytes
(``level_id`` 0000), or a block delta (``1111``, the path was in the previous level)::

    \\0<len of literal data>\\0<len of index string + 1>\\0 <index string> <blocks>

where the index string is ``\\0i\\0j...\\0`` and block ``i`` is the new file's bytes at ``i *
block size`` (as many as are left, possibly none). The delta comes from a rolling checksum
that numbers its outputs, not the blocks: it is right for blocks changed in place, appends and
truncation, but a file whose content *shifted* (bytes inserted or removed mid-file) is stored
wrongly by the writer; the literal length then disagrees with the blocks stored, and we warn.

Each level walks the tree with ``os.walk``: every directory (``root``) gets a header at every
level, files only when new or changed (mtime/ctime), and at the end one header with deleted
``1111`` for every path of the previous level's file list no longer found (deleted paths stay
in that list, so they are repeated at every later level). Directories are never in that list:
a directory the level does not mention is gone. Symlinks to directories are never stored
(``os.walk`` lists them among directories, and only ``root`` and files are processed), nor are
dangling symlinks (the agent's stat of the target fails).

Encrypted (``freezer.utils.crypt``): ``Salted__`` + salt, then AES-256-CFB keyed by
EVP_BytesToKey(MD5) of the passphrase file's first line with its newline — but the agent
encrypts *every compressor output* with a fresh cipher (same key and IV) and records no
boundaries. zlib's first ``compress()`` returns its 2-byte header, later ones nothing until
deflate emits a block (about 16 K symbols of input), then the final flush the rest: a small
level is [header][rest], which we decrypt as two pieces (bzip2 emits nothing before its 900 kB
block: one piece). A level whose compressor emitted more pieces cannot be split again (nothing
records where); it fails as corrupt, with the reason. Upstream's own restore cannot decrypt
any of these (one cipher per *received* chunk).
"""

from __future__ import annotations

import re
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain

from . import rsync
from .discovery import Generation
from .errors import CorruptArchive, TruncatedArchive, UnsupportedBackup
from .extract import TreeWriter, split_member_path
from .stream import CHUNK, ChunkReader, decompress, decrypt, file_chunks
from .tarstream import Member

COMPRESSION = {"gzip": "zlib", "bzip2": "bzip2"}
HEADER_FIELDS = 20
MAX_HEADER = 1 << 20  # a path of PATH_MAX and names: far below; bounds garbage input
TYPES = {b"r": b"0", b"u": b"0", b"d": b"5", b"l": b"2", b"p": b"6", b"c": b"3", b"b": b"4"}


def is_v1(g: Generation) -> bool:
    return g.format == "rsync v1"


def check_supported(g: Generation) -> None:
    if g.compression not in COMPRESSION:
        raise UnsupportedBackup(f"{g.data_path}: rsync v1 compression {g.compression!r}")


@dataclass
class ChainState:
    """What the levels applied so far left, as far as v1 needs it to apply the next one."""

    dirs: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)  # regular files restored (a delta base)


def looks_right(head: bytes, compression: str) -> bool | None:
    """Whether decrypted bytes start like a v1 stream (a header length and NUL); None when they
    are too short to tell."""
    if compression == "bzip2":
        return rsync.bzip2_head_ok(head)
    try:
        out = zlib.decompressobj().decompress(head, 32)
    except zlib.error:
        return False
    if not out or (out.isdigit() and len(out) < 12):
        return None
    return re.match(rb"\d{1,11}\0", out) is not None


ZLIB_HEADER = 2  # bytes: what zlib.compressobj().compress() returns first, its own piece


def _decrypt(
    chunks: Iterator[bytes], passphrase: bytes, compression: str | None, source: str
) -> Iterator[bytes]:
    """The compressed stream: zlib's header piece and the rest, each under a fresh cipher."""
    if compression != "gzip":
        yield from decrypt(chunks, passphrase, "md5", source)
        return
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 16 + ZLIB_HEADER:
            break
    if len(head) < 16 + ZLIB_HEADER:
        raise TruncatedArchive(source, "encrypted data ends inside its first bytes")
    salt = head[:16]
    yield from decrypt([head[: 16 + ZLIB_HEADER]], passphrase, "md5", source)
    yield from decrypt(chain([salt + head[16 + ZLIB_HEADER :]], chunks), passphrase, "md5", source)


def _plain_head(head: bytes, passphrase: bytes, source: str) -> bytes:
    return b"".join(_decrypt(iter([head]), passphrase, "gzip", source))


def probe_passphrase(g: Generation, candidates: list[bytes]) -> bytes:
    """Which candidate decrypts ``g`` (rsync.probe_passphrase, with v1's pieces)."""
    plain = _plain_head if g.compression == "gzip" else None
    return rsync.probe_passphrase(g, candidates, looks_right, plain)


class _Stream:
    def __init__(self, reader: ChunkReader, source: str) -> None:
        self.reader = reader
        self.source = source

    def exact(self, n: int, what: str) -> bytes:
        out = b""
        while len(out) < n:
            b = self.reader.read(min(n - len(out), CHUNK))
            if not b:
                raise TruncatedArchive(self.source, f"stream ends inside {what}")
            out += b
        return out

    def number(self, what: str, first: bytes = b"") -> int:
        """Decimal digits up to a NUL."""
        digits = first
        while True:
            b = self.reader.read(1)
            if not b:
                raise TruncatedArchive(self.source, f"stream ends inside {what}")
            if b == b"\0":
                break
            if not b.isdigit() or len(digits) >= 20:
                raise CorruptArchive(self.source, f"bad rsync v1 {what}")
            digits += b
        if not digits:
            raise CorruptArchive(self.source, f"empty rsync v1 {what}")
        return int(digits)

    def body(self, size: int, name: str) -> Iterator[bytes]:
        left = size
        while left:
            b = self.reader.read(min(left, CHUNK))
            if not b:
                raise TruncatedArchive(self.source, f"stream ends inside the data of {name!r}")
            left -= len(b)
            yield b


def _int(raw: bytes, what: str, name: str, source: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise CorruptArchive(source, f"bad rsync v1 {what} {raw!r:.40} for {name!r}") from None


def apply(
    g: Generation,
    writer: TreeWriter,
    state: ChainState,
    counter: Callable[[int], None] | None = None,
    passphrase: bytes | None = None,
) -> None:
    """Apply one rsync v1 generation (any level) on top of what ``state`` says is restored."""
    source = str(g.data_path)
    chunks: Iterator[bytes] = file_chunks(g.data_path, counter)
    if g.encrypted:
        if passphrase is None:
            raise CorruptArchive(source, "encrypted, and no passphrase was probed for it")
        chunks = _decrypt(chunks, passphrase, g.compression, source)
    chunks = decompress(chunks, COMPRESSION[g.compression], source)
    if g.encrypted:
        chunks = rsync.explain_corruption(chunks, source, PIECES_EXPLAINED)
    s = _Stream(ChunkReader(chunks), source)
    level_dirs: set[str] = set()
    written: set[str] = set()  # paths this level gave a (non-deleted) header
    first = True
    while True:
        start = s.reader.read(1)
        if not start:
            if first:
                # every level lists at least the backed-up directory (or file): an empty one
                # would read as "everything was deleted"
                raise CorruptArchive(source, "rsync v1 stream holds no entry")
            break
        if first and not start.isdigit():
            raise CorruptArchive(source, "not an rsync v1 stream (no header length)")
        first = False
        hlen = s.number("header length", start)
        digits = len(str(hlen))
        if not digits + 1 < hlen <= MAX_HEADER:
            raise CorruptArchive(source, f"implausible rsync v1 header length {hlen}")
        fields = (str(hlen).encode() + b"\0" + s.exact(hlen - digits - 1, "a header")).split(b"\0")
        if len(fields) != HEADER_FIELDS or fields[2] != b"1":
            raise CorruptArchive(source, f"bad rsync v1 header {fields[:3]!r:.200}")
        name = fields[1].decode("utf-8", "surrogateescape")
        parts = split_member_path(name)
        key = name if parts is None else "/".join(parts)  # "" is the root
        ftype, level_id, deleted = fields[11], fields[18], fields[19]
        if deleted == b"1111":
            # Repeated at every later level, and listed after the walk: a path the walk of this
            # same level re-created (file → directory, say) is not deleted.
            if key not in written:
                writer.delete(name)
                state.files.discard(key)
            continue
        mode = _int(fields[3], "mode", name, source)
        size = _int(fields[6], "size", name, source)
        typ = TYPES.get(ftype)
        if typ is None:
            raise CorruptArchive(source, f"unknown rsync v1 file type {ftype!r} for {name!r}")
        member = Member(
            name=name,
            type=typ,
            mode=stat.S_IMODE(mode),
            uid=_int(fields[4], "uid", name, source),
            gid=_int(fields[5], "gid", name, source),
            uname=fields[9].decode("utf-8", "surrogateescape"),
            gname=fields[10].decode("utf-8", "surrogateescape"),
            size=size if typ == b"0" else 0,
            mtime=_int(fields[7], "mtime", name, source),
            linkname=fields[12].decode("utf-8", "surrogateescape"),
            devmajor=_int(fields[16], "device", name, source),
            devminor=_int(fields[15], "device", name, source),
        )
        written.add(key)
        if typ == b"5":
            level_dirs.add(key)
        if typ != b"0":
            writer.apply(member, iter(()))
            state.files.discard(key)
            continue
        if level_id == b"1111" and g.level > 0:
            bs = _int(fields[17], "block size", name, source)
            if not 0 < bs <= 1 << 30:
                raise CorruptArchive(source, f"bad rsync v1 block size {bs} for {name!r}")
            _delta(s, writer, state, member, key, bs)
        else:
            body = s.body(size, name)
            writer.apply(member, body)
            for _ in body:  # a skipped (hostile) member's data must still be consumed
                pass
        state.files.add(key)
    if g.level > 0:
        # Every level lists every directory: one it does not list was removed (its files were
        # listed as deleted; an emptied directory is not), unless a file now has its name.
        for d in sorted(state.dirs - level_dirs - written, key=len):
            if d:
                writer.delete(d)
    state.dirs = level_dirs


def _delta(s: _Stream, writer: TreeWriter, state: ChainState, m: Member, key: str, bs: int) -> None:
    source = s.source
    if s.reader.read(1) != b"\0":
        raise CorruptArchive(source, f"bad rsync v1 block delta for {m.name!r}")
    literal = s.number(f"block delta of {m.name!r}")
    index_len = s.number(f"block delta of {m.name!r}") - 1
    if not 0 < index_len <= MAX_HEADER:
        raise CorruptArchive(source, f"bad rsync v1 block index length for {m.name!r}")
    raw = s.exact(index_len, f"the block indices of {m.name!r}")
    if not (raw.startswith(b"\0") and raw.endswith(b"\0")):
        raise CorruptArchive(source, f"bad rsync v1 block indices for {m.name!r}")
    try:
        blocks = [int(i) for i in raw.split(b"\0") if i]
    except ValueError:
        raise CorruptArchive(source, f"bad rsync v1 block indices for {m.name!r}") from None
    if sorted(set(blocks)) != blocks:
        raise CorruptArchive(source, f"rsync v1 block indices out of order for {m.name!r}")
    pieces = [(i * bs, max(0, min(bs, m.size - i * bs))) for i in blocks]
    if sum(n for _, n in pieces) != literal:
        writer.warn(
            f"{source}: rsync v1 delta for {m.name!r} does not line up with its blocks "
            f"({literal} literal bytes, {sum(n for _, n in pieces)} stored): upstream's v1 "
            "engine stores a file whose content shifted wrongly; its content may differ from "
            "the source"
        )
    if key in state.files:
        parts = [(off, s.body(n, m.name)) for off, n in pieces]
        writer.patch(m, iter(parts))
        for _, body in parts:  # a skipped member's data must still be consumed
            for _ in body:
                pass
        return
    # The previous level had another kind of entry here (a symlink, say): the delta was made
    # against an empty signature, so every block is stored and the file is whole.
    if [off for off, n in pieces if n] != list(range(0, m.size, bs)):
        raise CorruptArchive(
            source,
            f"block delta for {m.name!r}, which no earlier level restored as a file "
            "(was an earlier level skipped?)",
        )

    def whole() -> Iterator[bytes]:
        for _, n in pieces:
            yield from s.body(n, m.name)

    body = whole()
    writer.apply(m, body)
    for _ in body:
        pass


PIECES_EXPLAINED = (
    "upstream's rsync v1 engine restarts AES-CFB for every piece its compressor emitted "
    "without recording where; only a small level (zlib's header, then one piece) can be decrypted"
)
