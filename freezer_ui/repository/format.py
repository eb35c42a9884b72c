"""Byte layouts of packs, index objects and manifests (docs/format.md is the spec).

Parsers here accept arbitrary bytes: anything malformed raises :class:`CorruptData` (or
:class:`UnsupportedFormat` for a newer version), never another exception.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped]

from freezer_ui.repository.crypto import (
    BLOB_INDEX,
    BLOB_MANIFEST,
    BLOB_TRAILER,
    Envelope,
)
from freezer_ui.repository.errors import CorruptData, UnsupportedFormat

FORMAT_VERSION = 1

ID_LEN = 32  # chunk ids and pack ids
OBJ_ID_LEN = 16  # index ids, generation ids, repository id

PACK_MAGIC = b"FZUIPACK"
PACK_VERSION = 1
PACK_HEADER_LEN = 12
PACK_FOOTER_MAGIC = b"FZUIEND1"
PACK_FOOTER_LEN = 12
INDEX_MAGIC = b"FZUIINDX"
INDEX_VERSION = 1
MANIFEST_MAGIC = b"FZUIMANF"
MANIFEST_VERSION = 1
OBJECT_HEADER_LEN = 12

# Upper bound of one chunk's plaintext: FastCDC's largest max_size, and the largest fixed
# block we accept.  Bounds memory on read whatever a corrupt index claims.
MAX_CHUNK_SIZE = 64 << 20

PACKS_PREFIX = "data/"
INDEX_PREFIX = "index/"
MANIFESTS_PREFIX = "manifests/"
LOCKS_PREFIX = "locks/"
KEYS_PREFIX = "keys/"
CONFIG_KEY = "config"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


class PackEntry(NamedTuple):
    """Where one chunk blob lives inside a pack.  A named tuple: an index load builds one
    per chunk, and a tuple is built several times faster than a frozen dataclass."""

    chunk_id: bytes
    offset: int  # of the blob in the pack
    length: int  # of the stored blob
    size: int  # of the chunk's plaintext


# --- keys ---------------------------------------------------------------------------------
def pack_key(pack_id: bytes) -> str:
    h = pack_id.hex()
    return f"{PACKS_PREFIX}{h[:2]}/{h}"


def parse_pack_key(key: str) -> bytes | None:
    """The pack id of a ``data/xx/<64 hex>`` key, or None for anything else."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != PACKS_PREFIX or not _HEX64.match(parts[2]):
        return None
    if parts[1] != parts[2][:2]:
        return None
    return bytes.fromhex(parts[2])


def index_key(index_id: bytes) -> str:
    return INDEX_PREFIX + index_id.hex()


def manifest_key(gen_id: str) -> str:
    return MANIFESTS_PREFIX + gen_id


def parse_obj_key(key: str, prefix: str) -> bytes | None:
    if not key.startswith(prefix):
        return None
    name = key[len(prefix) :]
    return bytes.fromhex(name) if _HEX32.match(name) else None


def valid_generation_id(gen_id: str) -> bool:
    return isinstance(gen_id, str) and bool(_HEX32.match(gen_id))


# --- msgpack helpers ----------------------------------------------------------------------
def packb(doc: Any) -> bytes:
    out: bytes = msgpack.packb(doc, use_bin_type=True)
    return out


def unpackb(data: bytes, where: str) -> Any:
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises ValueError, ExtraData, StackError, ...
        raise CorruptData(f"undecodable msgpack: {type(exc).__name__}", key=where) from None


def _entry_list(raw: Any, where: str) -> list[PackEntry]:
    if not isinstance(raw, list):
        raise CorruptData("entry list is not a list", key=where)
    out = []
    append = out.append
    # the hot loop of loading an index: plain checks, no generator per entry
    for e in raw:
        if type(e) is not list or len(e) != 4:
            raise CorruptData("malformed pack entry", key=where)
        cid, off, length, size = e
        if (
            type(cid) is not bytes
            or len(cid) != ID_LEN
            or type(off) is not int
            or type(length) is not int
            or type(size) is not int
        ):
            raise CorruptData("malformed pack entry", key=where)
        if off < PACK_HEADER_LEN or length <= 0 or not (0 <= size <= MAX_CHUNK_SIZE):
            raise CorruptData("pack entry out of range", key=where)
        append(PackEntry(cid, off, length, size))
    return out


def _dump_entries(entries: Iterable[PackEntry]) -> list[list[Any]]:
    return [[e.chunk_id, e.offset, e.length, e.size] for e in entries]


# --- packs --------------------------------------------------------------------------------
class PackBuilder:
    """Collects sealed chunk blobs and produces the pack's bytes (as a list of parts).

    With ``sink``, every part (header, blobs, trailer, footer) is handed to ``sink`` as soon
    as it exists instead of being kept: the writer streams packs to storage that way, so a
    pack is never whole in memory.  The bytes produced are the same either way.
    """

    def __init__(self, envelope: Envelope, sink: Callable[[bytes], None] | None = None) -> None:
        self.envelope = envelope
        self.pack_id = os.urandom(ID_LEN)
        self.parts: list[bytes] = []
        self._emit = self.parts.append if sink is None else sink
        self._emit(PACK_MAGIC + struct.pack("<I", PACK_VERSION))
        self.pos = PACK_HEADER_LEN
        self.entries: list[PackEntry] = []

    @property
    def key(self) -> str:
        return pack_key(self.pack_id)

    def add(self, chunk_id: bytes, size: int, blob: bytes) -> PackEntry:
        entry = PackEntry(chunk_id, self.pos, len(blob), size)
        self._emit(blob)
        self.entries.append(entry)
        self.pos += len(blob)
        return entry

    def __len__(self) -> int:
        return len(self.entries)

    def finish(self) -> list[bytes]:
        """Append trailer and footer; return every part of the pack in order (with a
        ``sink``: the parts not yet handed to it, i.e. none)."""
        trailer = self.envelope.seal(
            BLOB_TRAILER, self.pack_id, packb({"entries": _dump_entries(self.entries)})
        )
        self._emit(trailer)
        self._emit(struct.pack("<I", len(trailer)) + PACK_FOOTER_MAGIC)
        return self.parts


def parse_footer(footer: bytes, pack_size: int, where: str) -> tuple[int, int]:
    """Return (trailer_offset, trailer_length) from the last 12 bytes of a pack."""
    if pack_size < PACK_HEADER_LEN + PACK_FOOTER_LEN or len(footer) != PACK_FOOTER_LEN:
        raise CorruptData("pack too short", key=where, offset=0)
    if footer[4:] != PACK_FOOTER_MAGIC:
        raise CorruptData("bad pack footer magic", key=where, offset=pack_size - 8)
    (tlen,) = struct.unpack_from("<I", footer)
    toff = pack_size - PACK_FOOTER_LEN - tlen
    if toff < PACK_HEADER_LEN:
        raise CorruptData("bad pack trailer length", key=where, offset=pack_size - PACK_FOOTER_LEN)
    return toff, tlen


def parse_trailer(
    envelope: Envelope, pack_id: bytes, trailer: bytes, trailer_offset: int, where: str
) -> list[PackEntry]:
    """Open a pack trailer and check that its entries tile the pack body exactly."""
    doc = unpackb(
        envelope.open(BLOB_TRAILER, pack_id, trailer, where=where, offset=trailer_offset), where
    )
    if not isinstance(doc, dict) or "entries" not in doc:
        raise CorruptData("malformed pack trailer", key=where, offset=trailer_offset)
    entries = _entry_list(doc["entries"], where)
    # Entries are contiguous from the header to the trailer: no byte of a pack is outside
    # some checked structure, so any flipped byte is caught by some check.
    pos = PACK_HEADER_LEN
    for e in entries:
        if e.offset != pos:
            raise CorruptData("pack entries are not contiguous", key=where, offset=e.offset)
        pos += e.length
    if pos != trailer_offset:
        raise CorruptData("pack entries do not reach the trailer", key=where, offset=pos)
    return entries


def check_pack_header(header: bytes, where: str) -> None:
    if len(header) < PACK_HEADER_LEN or header[:8] != PACK_MAGIC:
        raise CorruptData("bad pack magic", key=where, offset=0)
    (version,) = struct.unpack_from("<I", header, 8)
    if version != PACK_VERSION:
        raise UnsupportedFormat(f"{where}: pack version {version}")


def parse_pack(envelope: Envelope, pack_id: bytes, data: bytes, where: str) -> list[PackEntry]:
    """Parse a whole pack's bytes (header, footer, trailer); chunk blobs are not opened."""
    check_pack_header(data[:PACK_HEADER_LEN], where)
    toff, tlen = parse_footer(data[-PACK_FOOTER_LEN:], len(data), where)
    return parse_trailer(envelope, pack_id, data[toff : toff + tlen], toff, where)


# --- index objects ------------------------------------------------------------------------
def dump_index(envelope: Envelope, index_id: bytes, packs: dict[bytes, list[PackEntry]]) -> bytes:
    return dump_index_encoded(
        envelope, index_id, {pid: encode_entries(entries) for pid, entries in packs.items()}
    )


def encode_entries(entries: Iterable[PackEntry]) -> bytes:
    """The msgpack encoding of a pack's entry list as an index object holds it."""
    return packb(_dump_entries(entries))


def dump_index_encoded(envelope: Envelope, index_id: bytes, packs: dict[bytes, bytes]) -> bytes:
    """``dump_index`` from entry lists already encoded with :func:`encode_entries`: the
    same bytes as ``packb({"packs": [[pid, entries], ...]})`` (msgpack is deterministic),
    without every entry alive as a Python object at once."""
    packer = msgpack.Packer(use_bin_type=True)
    parts = [packer.pack_map_header(1), packer.pack("packs"), packer.pack_array_header(len(packs))]
    for pid, raw in packs.items():
        parts.append(packer.pack_array_header(2))
        parts.append(packer.pack(pid))
        parts.append(raw)
    return (
        INDEX_MAGIC
        + struct.pack("<I", INDEX_VERSION)
        + envelope.seal(BLOB_INDEX, index_id, b"".join(parts))
    )


def _object_header(data: bytes, magic: bytes, supported: int, where: str) -> None:
    if len(data) < OBJECT_HEADER_LEN or data[:8] != magic:
        raise CorruptData("bad magic", key=where, offset=0)
    (version,) = struct.unpack_from("<I", data, 8)
    if version != supported:
        raise UnsupportedFormat(f"{where}: version {version}")


def parse_index(
    envelope: Envelope, index_id: bytes, data: bytes, where: str
) -> dict[bytes, list[PackEntry]]:
    return dict(iter_index(envelope, index_id, data, where))


def iter_index(
    envelope: Envelope, index_id: bytes, data: bytes, where: str
) -> Iterator[tuple[bytes, list[PackEntry]]]:
    """``(pack_id, entries)`` of an index object, one pack record at a time: the whole
    document is never unpacked at once (loading the index of a large repository).  A
    malformed object raises :class:`CorruptData`, possibly after some records were yielded."""
    _object_header(data, INDEX_MAGIC, INDEX_VERSION, where)
    plain = envelope.open(BLOB_INDEX, index_id, data[OBJECT_HEADER_LEN:], where=where)
    u = msgpack.Unpacker(io.BytesIO(plain), raw=False, max_buffer_size=max(len(plain), 1 << 20))
    try:
        try:
            nkeys = u.read_map_header()
        except ValueError:
            raise CorruptData("malformed index", key=where) from None
        # packb of a dict keeps the last of duplicate keys: collect only from the last "packs"
        records: list[tuple[bytes, list[PackEntry]]] | None = None
        for _ in range(nkeys):
            if u.unpack() != "packs":
                u.skip()
                continue
            try:
                n = u.read_array_header()
            except ValueError:
                raise CorruptData("malformed index", key=where) from None
            records = []
            for _ in range(n):
                p = u.unpack()
                if (
                    not isinstance(p, list)
                    or len(p) != 2
                    or not isinstance(p[0], bytes)
                    or len(p[0]) != ID_LEN
                ):
                    raise CorruptData("malformed index pack record", key=where)
                records.append((p[0], _entry_list(p[1], where)))
                if nkeys == 1:  # the usual document: stream the records
                    yield records.pop()
        if records is None:
            raise CorruptData("malformed index", key=where)
        if u.tell() != len(plain):
            raise CorruptData("undecodable msgpack: ExtraData", key=where)
    except CorruptData:
        raise
    except Exception as exc:  # msgpack raises ValueError, OutOfData, StackError, ...
        raise CorruptData(f"undecodable msgpack: {type(exc).__name__}", key=where) from None
    yield from records


def index_pack_ids(envelope: Envelope, index_id: bytes, data: bytes, where: str) -> list[bytes]:
    """The pack ids an index object lists, without decoding their entries (skipped in C):
    enough to tell which packs an index object covers."""
    _object_header(data, INDEX_MAGIC, INDEX_VERSION, where)
    plain = envelope.open(BLOB_INDEX, index_id, data[OBJECT_HEADER_LEN:], where=where)
    u = msgpack.Unpacker(io.BytesIO(plain), raw=False, max_buffer_size=max(len(plain), 1 << 20))
    try:
        out: list[bytes] | None = None
        for _ in range(u.read_map_header()):
            if u.unpack() != "packs":
                u.skip()
                continue
            out = []
            for _ in range(u.read_array_header()):
                if u.read_array_header() != 2:
                    raise CorruptData("malformed index pack record", key=where)
                pid = u.unpack()
                if not isinstance(pid, bytes) or len(pid) != ID_LEN:
                    raise CorruptData("malformed index pack record", key=where)
                u.skip()
                out.append(pid)
        if out is None or u.tell() != len(plain):
            raise CorruptData("malformed index", key=where)
        return out
    except CorruptData:
        raise
    except Exception as exc:  # msgpack raises ValueError, OutOfData, StackError, ...
        raise CorruptData(f"undecodable msgpack: {type(exc).__name__}", key=where) from None


# --- manifests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestDoc:
    header: dict[str, Any]
    item_chunks: list[tuple[bytes, int]]
    item_count: int


def dump_manifest(envelope: Envelope, gen_id: str, doc: ManifestDoc) -> bytes:
    body = {
        "header": doc.header,
        "items": [[cid, size] for cid, size in doc.item_chunks],
        "item_count": doc.item_count,
    }
    return (
        MANIFEST_MAGIC
        + struct.pack("<I", MANIFEST_VERSION)
        + envelope.seal(BLOB_MANIFEST, bytes.fromhex(gen_id), packb(body))
    )


def parse_manifest(envelope: Envelope, gen_id: str, data: bytes, where: str) -> ManifestDoc:
    _object_header(data, MANIFEST_MAGIC, MANIFEST_VERSION, where)
    doc = unpackb(
        envelope.open(BLOB_MANIFEST, bytes.fromhex(gen_id), data[OBJECT_HEADER_LEN:], where=where),
        where,
    )
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("header"), dict)
        or not isinstance(doc.get("items"), list)
        or type(doc.get("item_count")) is not int
    ):
        raise CorruptData("malformed manifest", key=where)
    chunks = []
    for e in doc["items"]:
        if (
            not isinstance(e, list)
            or len(e) != 2
            or not isinstance(e[0], bytes)
            or len(e[0]) != ID_LEN
            or type(e[1]) is not int
            or not 0 <= e[1] <= MAX_CHUNK_SIZE
        ):
            raise CorruptData("malformed manifest item chunk", key=where)
        chunks.append((e[0], e[1]))
    return ManifestDoc(doc["header"], chunks, doc["item_count"])


def item_chunk_refs(item: Any) -> list[tuple[bytes, int]]:
    """The chunk references of one item: its ``chunks`` list of ``[id, size]``.

    Ids may be bytes or hex strings (engines may choose either for readability).
    Raises ValueError when the list is malformed.
    """
    if not isinstance(item, dict):
        raise ValueError("item is not a map")
    raw = item.get("chunks")
    if raw is None:
        return []
    if type(raw) is list:
        # Called once per item of every commit: the engines' own form (a list of
        # ``[32-byte id, int]`` lists) is checked with plain type tests; anything else takes
        # the general path below, which accepts more forms and names the bad reference.
        out = []
        append = out.append
        for ref in raw:
            if type(ref) is not list or len(ref) != 2:
                break
            cid, size = ref
            if type(cid) is not bytes or len(cid) != ID_LEN or type(size) is not int:
                break
            append((cid, size))
        else:
            return out
    if not isinstance(raw, list | tuple):
        raise ValueError("item 'chunks' is not a list")
    out = []
    for ref in raw:
        if isinstance(ref, list | tuple) and len(ref) == 2:
            cid, size = ref
        elif hasattr(ref, "id") and hasattr(ref, "size"):
            cid, size = ref.id, ref.size
        else:
            raise ValueError(f"bad chunk reference {ref!r}")
        if isinstance(cid, str):
            cid = bytes.fromhex(cid)
        if not isinstance(cid, bytes) or len(cid) != ID_LEN or type(size) is not int:
            raise ValueError(f"bad chunk reference {ref!r}")
        out.append((cid, size))
    return out
