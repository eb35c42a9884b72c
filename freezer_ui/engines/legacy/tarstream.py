"""A streaming reader for the GNU tar archives that upstream Freezer's tar engine writes.

Freezer runs ``tar --create --listed-incremental=... --format=gnu`` (GNU tar's default format),
so members carry GNU extensions: ``L``/``K`` long names, and ``D`` "dumpdir" members whose data
lists a directory's entries (the only way deletions and renames are recorded). In the GNU header
the bytes where POSIX ustar keeps its ``prefix`` field hold atime/ctime instead; Python's
``tarfile`` glues them onto member names, which is why we parse the headers ourselves.

The reader never holds more than one member's data block in memory (dumpdir listings excepted,
and those are bounded), and every malformed input raises :class:`CorruptArchive` or
:class:`TruncatedArchive` naming the source file — never another exception, never a hang.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .errors import CorruptArchive, TruncatedArchive

BLOCK = 512
# GNU dumpdirs list every entry of one directory; a directory with a million long names is
# ~100 MiB. Anything larger is not a listing we want in memory: treat it as corruption.
MAX_META_SIZE = 256 * 1024 * 1024
# Long names / pax records are tiny in practice; a huge one is a corrupt or hostile header.
MAX_NAME_SIZE = 1024 * 1024

REGULAR_TYPES = frozenset({b"0", b"7", b"\0"})  # "7" contiguous, NUL = pre-POSIX regular
HARDLINK, SYMLINK, CHRDEV, BLKDEV, DIRTYPE, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
DUMPDIR, LONGNAME, LONGLINK, SPARSE, MULTIVOL, VOLHDR = b"D", b"L", b"K", b"S", b"M", b"V"
PAX_LOCAL, PAX_GLOBAL = b"x", b"g"

GNU_MAGIC = b"ustar  \0"
_LOW_BYTES = bytes(range(128))
POSIX_MAGIC = b"ustar\x0000"


class Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


@dataclass
class Member:
    """One archive entry, with GNU/pax extensions already folded in."""

    name: str  # as stored (decoded with surrogateescape so any byte name round-trips)
    type: bytes  # the typeflag byte; regular files are normalised to b"0"
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str = ""
    uname: str = ""  # owner names; restored in preference to the ids when resolvable, as GNU tar
    gname: str = ""
    xattrs: dict[str, bytes] | None = None  # pax SCHILY.xattr.* records, values as stored
    # pax SCHILY.acl.access/default ("access"/"default" → ACL text): present, possibly empty,
    # only in archives made with --acls (every member then has its access ACL)
    acls: dict[str, str] | None = None
    devmajor: int = 0
    devminor: int = 0
    # For DUMPDIR members: (code, name) pairs, codes Y/N/D (entries) and R/T/X (renames).
    dumpdir: list[tuple[str, str]] | None = None
    offset: int = field(default=0)  # byte offset of the header in the tar stream, for messages

    @property
    def is_file(self) -> bool:
        return self.type == b"0"

    @property
    def is_dir(self) -> bool:
        return self.type in (DIRTYPE, DUMPDIR)


def _decode(raw: bytes) -> str:
    return os.fsdecode(raw)  # surrogateescape: arbitrary bytes survive to the filesystem


def _cstr(buf: bytes) -> bytes:
    end = buf.find(b"\0")
    return buf if end < 0 else buf[:end]


class TarReader:
    """Iterate the members of a tar stream; read a file's data with :meth:`data`.

    Usage::

        reader = TarReader(stream, source="…/data")
        for m in reader:
            if m.is_file:
                for chunk in reader.data(m): ...
        # data not consumed before the next iteration is skipped
    """

    def __init__(self, stream: Readable, source: str, chunk_size: int = 1 << 20) -> None:
        self._stream = stream
        self.source = source
        self._chunk = chunk_size
        self._pos = 0  # bytes of tar stream consumed
        self._pending = 0  # unread data bytes of the current member
        self._pending_pad = 0
        self.ended = False  # True once the end-of-archive block was seen

    # ---------------------------------------------------------------- low level

    def _read_exact(self, n: int, what: str) -> bytes:
        parts = []
        need = n
        while need:
            b = self._stream.read(need)
            if not b:
                raise TruncatedArchive(
                    self.source, f"archive ends inside {what} (tar offset {self._pos})"
                )
            parts.append(b)
            need -= len(b)
            self._pos += len(b)
        return b"".join(parts)

    def _skip_pending(self) -> None:
        while self._pending:
            n = min(self._pending, self._chunk)
            self._read_exact(n, "member data")
            self._pending -= n
        if self._pending_pad:
            self._read_exact(self._pending_pad, "member padding")
            self._pending_pad = 0

    def _num(self, field_: bytes, what: str, offset: int) -> int:
        """Octal (NUL/space padded) or GNU base-256 numeric field."""
        if field_ and field_[0] & 0x80:
            if field_[0] == 0xFF:  # base-256 negative: only meaningful for pre-1970 mtimes
                raise CorruptArchive(self.source, f"negative {what} in header at {offset}")
            value = field_[0] & 0x7F
            for b in field_[1:]:
                value = (value << 8) | b
            return value
        text = field_.replace(b"\0", b" ").strip()
        if not text:
            return 0
        try:
            return int(text, 8)
        except ValueError:
            raise CorruptArchive(
                self.source, f"bad {what} field {field_!r} in header at tar offset {offset}"
            ) from None

    def _check_header(self, h: bytes, offset: int) -> None:
        try:
            stored = int(h[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
        except ValueError:
            stored = -1
        rest = h[:148] + h[156:]
        unsigned = sum(rest) + 8 * 32
        if stored == unsigned:
            return
        # Some old tars summed signed chars; GNU tar accepts either, so do we. Each byte ≥ 128
        # counts 256 less when signed (translate() drops the low bytes to count the high ones).
        signed = unsigned - 256 * len(rest.translate(None, _LOW_BYTES))
        if stored != signed:
            raise CorruptArchive(
                self.source,
                f"tar header checksum mismatch at tar offset {offset} (corrupt data or wrong "
                "decryption key)",
            )

    def _read_meta_data(self, size: int, limit: int, what: str) -> bytes:
        if size > limit:
            raise CorruptArchive(self.source, f"{what} of {size} bytes is implausibly large")
        data = self._read_exact(size, what)
        pad = -size % BLOCK
        if pad:
            self._read_exact(pad, f"{what} padding")
        return data

    # ---------------------------------------------------------------- public

    def first_header_ok(self) -> bool:
        """Read one block and say whether it is a valid header (or a clean empty archive).

        Used to tell a right decryption key from a wrong one: CFB has no MAC, so a wrong key
        yields garbage that fails decompression or this checksum.
        """
        h = self._read_exact(BLOCK, "the first tar header")
        if h == bytes(BLOCK):
            return True
        try:
            self._check_header(h, 0)
        except CorruptArchive:
            return False
        return True

    def data(self, member: Member) -> Iterator[bytes]:
        """Yield the current regular member's data in chunks (then its padding is skipped)."""
        while self._pending:
            n = min(self._pending, self._chunk)
            b = self._read_exact(n, f"data of {member.name!r}")
            self._pending -= n
            yield b
        if self._pending_pad:
            self._read_exact(self._pending_pad, "member padding")
            self._pending_pad = 0

    def __iter__(self) -> Iterator[Member]:
        long_name: bytes | None = None
        long_link: bytes | None = None
        pax: dict[str, str] = {}
        xattrs: dict[str, bytes] = {}
        while True:
            self._skip_pending()
            offset = self._pos
            first = self._stream.read(BLOCK)
            if not first:
                raise TruncatedArchive(
                    self.source,
                    f"archive ends without an end-of-archive marker (tar offset {offset})",
                )
            self._pos += len(first)
            h = (
                first
                if len(first) == BLOCK
                else first + self._read_exact(BLOCK - len(first), "a tar header")
            )
            if h == bytes(BLOCK):
                # GNU tar writes two zero blocks then pads to its record size; one is enough
                # to know the archive ended where its writer said so.
                self.ended = True
                return
            self._check_header(h, offset)
            typeflag = h[156:157]
            size = self._num(h[124:136], "size", offset)
            magic = h[257:265]

            if typeflag in (LONGNAME, LONGLINK):
                raw = _cstr(self._read_meta_data(size, MAX_NAME_SIZE, "GNU long name"))
                if typeflag == LONGNAME:
                    long_name = raw
                else:
                    long_link = raw
                continue
            if typeflag in (PAX_LOCAL, PAX_GLOBAL):
                data = self._read_meta_data(size, MAX_NAME_SIZE, "pax header")
                if typeflag == PAX_LOCAL:  # global headers only carry defaults we don't use
                    pax, xattrs = self._parse_pax(data, offset)
                continue

            if long_name is not None:
                raw_name = long_name
            elif magic == POSIX_MAGIC and h[345] != 0:
                # POSIX ustar splits long names into prefix + name. GNU-format headers use the
                # same bytes for atime/ctime, so only honour it for the POSIX magic.
                raw_name = _cstr(h[345:500]) + b"/" + _cstr(h[0:100])
            else:
                raw_name = _cstr(h[0:100])
            raw_link = long_link if long_link is not None else _cstr(h[157:257])
            name = pax.get("path", _decode(raw_name))
            linkname = pax.get("linkpath", _decode(raw_link))
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise CorruptArchive(
                        self.source, f"bad pax size at tar offset {offset}"
                    ) from None
            long_name = long_link = None
            mtime = self._num(h[136:148], "mtime", offset)
            if "mtime" in pax:
                try:
                    mtime = int(float(pax["mtime"]))
                except ValueError:
                    pass  # keep the header's value: a bad pax mtime is not worth failing on
            uid = self._num(h[108:116], "uid", offset)
            gid = self._num(h[116:124], "gid", offset)
            try:
                uid = int(pax.get("uid", uid))
                gid = int(pax.get("gid", gid))
            except ValueError:
                pass  # keep the header's ids, as for mtime
            uname = pax.get("uname", _decode(_cstr(h[265:297])))
            gname = pax.get("gname", _decode(_cstr(h[297:329])))
            member_xattrs = xattrs or None
            member_acls = {
                kind: pax[f"SCHILY.acl.{kind}"]
                for kind in ("access", "default")
                if f"SCHILY.acl.{kind}" in pax
            } or None
            pax, xattrs = {}, {}
            if size < 0:
                raise CorruptArchive(self.source, f"negative size at tar offset {offset}")

            if typeflag == b"\0" and name.endswith("/"):
                typeflag = DIRTYPE  # pre-POSIX tars marked directories only by the slash
            m = Member(
                name=name,
                type=b"0" if typeflag in REGULAR_TYPES else typeflag,
                mode=self._num(h[100:108], "mode", offset) & 0o7777,
                uid=uid,
                gid=gid,
                size=size,
                mtime=mtime,
                linkname=linkname,
                uname=uname,
                gname=gname,
                xattrs=member_xattrs,
                acls=member_acls,
                offset=offset,
            )
            if typeflag == DUMPDIR:
                m.dumpdir = self._parse_dumpdir(
                    self._read_meta_data(size, MAX_META_SIZE, "dumpdir listing"), offset
                )
            elif typeflag in (CHRDEV, BLKDEV):
                m.devmajor = self._num(h[329:337], "devmajor", offset)
                m.devminor = self._num(h[337:345], "devminor", offset)
            elif typeflag == SPARSE:
                # Freezer never passes --sparse; restoring one would need the sparse map.
                raise CorruptArchive(
                    self.source,
                    f"GNU sparse member {name!r} is not supported (tar offset {offset})",
                )
            elif typeflag == MULTIVOL:
                raise CorruptArchive(
                    self.source, f"multi-volume continuation {name!r} (tar offset {offset})"
                )
            if typeflag not in (DUMPDIR, HARDLINK, SYMLINK, DIRTYPE, CHRDEV, BLKDEV, FIFO):
                # Regular files, unknown types (GNU tar extracts those as regular files) and
                # volume headers carry data: leave it pending for data() or the next skip.
                self._pending = size
                self._pending_pad = -size % BLOCK
            elif typeflag != DUMPDIR and size:
                # Links/dirs/devices normally have size 0; skip whatever a writer put there.
                self._pending = size
                self._pending_pad = -size % BLOCK
            if typeflag == VOLHDR:
                continue
            yield m

    def _parse_dumpdir(self, data: bytes, offset: int) -> list[tuple[str, str]]:
        entries: list[tuple[str, str]] = []
        for raw in data.split(b"\0"):
            if not raw:
                break  # the listing ends with an empty entry
            code = chr(raw[0])
            if code not in "YNDRTX":
                raise CorruptArchive(
                    self.source, f"unknown dumpdir code {code!r} at tar offset {offset}"
                )
            entries.append((code, _decode(raw[1:])))
        return entries

    def _parse_pax(self, data: bytes, offset: int) -> tuple[dict[str, str], dict[str, bytes]]:
        """pax records → (text keywords, xattrs). Xattr values stay bytes: they are binary."""
        out: dict[str, str] = {}
        xattrs: dict[str, bytes] = {}
        pos = 0
        while pos < len(data):
            if data[pos] == 0:
                break
            sp = data.find(b" ", pos)
            try:
                length = int(data[pos:sp])
            except ValueError:
                raise CorruptArchive(
                    self.source, f"bad pax record at tar offset {offset}"
                ) from None
            if sp < 0 or length <= 0 or pos + length > len(data):
                raise CorruptArchive(self.source, f"bad pax record at tar offset {offset}")
            record = data[sp + 1 : pos + length]
            key, eq, value = record.rstrip(b"\n").partition(b"=")
            if eq and key.startswith(b"SCHILY.xattr."):
                # the record's own trailing newline is the only one stripped: a value may end in
                # "\n" itself, and binary values may hold anything
                raw_value = record[len(key) + 1 :].removesuffix(b"\n")
                xattrs[_decode(key[len(b"SCHILY.xattr.") :])] = raw_value
            elif eq:
                out[key.decode("utf-8", "replace")] = _decode(value)
            pos += length
        return out, xattrs
