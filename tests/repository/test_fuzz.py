"""Parsers meet arbitrary bytes: they raise our own errors, never anything else, never hang."""

from __future__ import annotations

import os
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freezer_ui.repository import CorruptData, RepositoryError, UnsupportedFormat
from freezer_ui.repository.crypto import (
    BLOB_CHUNK,
    BLOB_INDEX,
    BLOB_MANIFEST,
    BLOB_TRAILER,
    KEYFILE_MAGIC,
    KEYFILE_VERSION,
    Envelope,
    KeyMaterial,
    dump_checked,
    load_checked,
    make_key_file,
    open_key_file,
)
from freezer_ui.repository.format import (
    INDEX_MAGIC,
    INDEX_VERSION,
    MANIFEST_MAGIC,
    MANIFEST_VERSION,
    ManifestDoc,
    PackBuilder,
    PackEntry,
    dump_index,
    dump_manifest,
    parse_index,
    parse_manifest,
    parse_pack,
)
from freezer_ui.repository.locks import parse_lock
from freezer_ui.repository.repository import CONFIG_MAGIC, Generation, parse_config

OURS = (CorruptData, UnsupportedFormat)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ENVELOPES = {
    "none": Envelope(KeyMaterial(id_key=b"i" * 32, enc_key=None)),
    "aes": Envelope(KeyMaterial(id_key=b"i" * 32, enc_key=b"k" * 32)),
}
PACK_ID = b"p" * 32
GEN_ID = "ab" * 16
INDEX_ID = b"x" * 16

pytestmark = pytest.mark.timeout(120)


def _valid_pack(env: Envelope) -> tuple[bytes, bytes]:
    b = PackBuilder(env)
    for i in range(3):
        data = os.urandom(50) + bytes([i]) * 200
        b.add(bytes([i]) * 32, len(data), env.seal(BLOB_CHUNK, bytes([i]) * 32, data))
    return b.pack_id, b"".join(b.finish())


def _check_pack(env: Envelope, pack_id: bytes, raw: bytes) -> None:
    entries = parse_pack(env, pack_id, raw, "data/pp/pack")
    for e in entries:
        env.open(BLOB_CHUNK, e.chunk_id, raw[e.offset : e.offset + e.length], max_size=e.size)


mutations = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4)


def _mutate(raw: bytes, muts: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(raw)
    for pos, mask in muts:
        b[pos % len(b)] ^= mask
    if cut is not None:
        b = b[: cut % (len(b) + 1)]
    return bytes(b)


@pytest.mark.parametrize("kind", sorted(ENVELOPES))
@given(raw=st.binary(max_size=2000))
@FUZZ
def test_pack_random_bytes(kind: str, raw: bytes) -> None:
    with pytest.raises(OURS):
        parse_pack(ENVELOPES[kind], PACK_ID, raw, "data/pp/pack")


@pytest.mark.parametrize("kind", sorted(ENVELOPES))
@given(muts=mutations, cut=st.none() | st.integers(0, 10**6))
@FUZZ
def test_pack_mutations_always_detected(
    kind: str, muts: list[tuple[int, int]], cut: int | None
) -> None:
    env = ENVELOPES[kind]
    pack_id, raw = _valid_pack(env)
    _check_pack(env, pack_id, raw)
    bad = _mutate(raw, muts, cut)
    if bad == raw:
        return
    with pytest.raises(OURS):
        _check_pack(env, pack_id, bad)


@pytest.mark.parametrize("kind", sorted(ENVELOPES))
@given(raw=st.binary(max_size=2000), prefix=st.booleans())
@FUZZ
def test_index_and_manifest_random_bytes(kind: str, raw: bytes, prefix: bool) -> None:
    env = ENVELOPES[kind]
    for magic, version, parse, oid in (
        (INDEX_MAGIC, INDEX_VERSION, parse_index, INDEX_ID),
        (MANIFEST_MAGIC, MANIFEST_VERSION, parse_manifest, GEN_ID),
    ):
        data = (magic + struct.pack("<I", version) + raw) if prefix else raw
        with pytest.raises(OURS):
            parse(env, oid, data, "obj")  # type: ignore[operator]


@pytest.mark.parametrize("kind", sorted(ENVELOPES))
@given(muts=mutations, cut=st.none() | st.integers(0, 10**6))
@FUZZ
def test_index_and_manifest_mutations(
    kind: str, muts: list[tuple[int, int]], cut: int | None
) -> None:
    env = ENVELOPES[kind]
    idx = dump_index(env, INDEX_ID, {PACK_ID: [PackEntry(b"c" * 32, 12, 100, 80)]})
    man = dump_manifest(env, GEN_ID, ManifestDoc({"backup_name": "x"}, [(b"c" * 32, 80)], 1))
    for raw, parse, oid in ((idx, parse_index, INDEX_ID), (man, parse_manifest, GEN_ID)):
        parse(env, oid, raw, "obj")  # type: ignore[operator]
        bad = _mutate(raw, muts, cut)
        if bad != raw:
            with pytest.raises(OURS):
                parse(env, oid, bad, "obj")  # type: ignore[operator]


INTS = st.integers(-(2**63), 2**64 - 1)

# Well-sealed documents with the wrong shape: the validators behind the crypto layer.
leaf = st.none() | st.booleans() | INTS | st.binary(max_size=40) | st.text(max_size=10)
docs = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
shaped = st.one_of(
    docs,
    st.fixed_dictionaries({"entries": docs}),
    st.fixed_dictionaries({"packs": st.lists(st.lists(docs, max_size=3), max_size=3)}),
    st.fixed_dictionaries(
        {"header": docs, "items": st.lists(docs, max_size=3), "item_count": docs}
    ),
    st.fixed_dictionaries(
        {
            "entries": st.lists(
                st.tuples(st.binary(min_size=32, max_size=32), INTS, INTS, INTS).map(list),
                max_size=4,
            )
        }
    ),
)


@given(doc=shaped)
@FUZZ
def test_sealed_documents_of_any_shape(doc: Any) -> None:
    env = ENVELOPES["none"]
    body = msgpack.packb(doc, use_bin_type=True)
    trailer = env.seal(BLOB_TRAILER, PACK_ID, body)
    pack = (
        b"FZUIPACK" + struct.pack("<I", 1) + trailer + struct.pack("<I", len(trailer)) + b"FZUIEND1"
    )
    try:
        parse_pack(env, PACK_ID, pack, "p")
    except OURS:
        pass
    for magic, version, btype, parse, oid in (
        (INDEX_MAGIC, INDEX_VERSION, BLOB_INDEX, parse_index, INDEX_ID),
        (MANIFEST_MAGIC, MANIFEST_VERSION, BLOB_MANIFEST, parse_manifest, GEN_ID),
    ):
        raw_id = oid if isinstance(oid, bytes) else bytes.fromhex(oid)
        data = magic + struct.pack("<I", version) + env.seal(btype, raw_id, body)
        try:
            parse(env, oid, data, "obj")  # type: ignore[operator]
        except OURS:
            pass


@given(doc=docs, version=st.integers(0, 3))
@FUZZ
def test_config_and_key_file_shapes(doc: Any, version: int) -> None:
    for d in (doc, {"version": 1, "id": b"i" * 16, "encryption": "none", "chunker": doc}):
        if not isinstance(d, dict):
            continue
        try:
            parse_config(dump_checked(CONFIG_MAGIC, version, d))
        except OURS:
            pass
        try:
            open_key_file(dump_checked(KEYFILE_MAGIC, version, d), "pw", b"r" * 16, "keys/k")
        except OURS:
            pass


@given(raw=st.binary(max_size=500))
@FUZZ
def test_config_and_key_random_bytes(raw: bytes) -> None:
    for data in (raw, CONFIG_MAGIC + raw):
        with pytest.raises(OURS):
            parse_config(data)
    with pytest.raises(OURS):
        load_checked(KEYFILE_MAGIC, KEYFILE_VERSION, KEYFILE_MAGIC + raw, "k")


@given(muts=mutations)
@settings(max_examples=40, deadline=None)
def test_key_file_mutations(muts: list[tuple[int, int]]) -> None:
    keys = KeyMaterial(id_key=b"i" * 32, enc_key=b"k" * 32)
    raw = make_key_file("pw", b"r" * 16, keys, scrypt_n=1 << 4)
    bad = _mutate(raw, muts, None)
    if bad != raw:
        with pytest.raises(OURS):
            open_key_file(bad, "pw", b"r" * 16, "keys/k")


@given(raw=st.binary(max_size=300))
@FUZZ
def test_lock_parser(raw: bytes) -> None:
    for data in (raw, b"FZUILOCK" + raw):
        info = parse_lock("locks/x", data)
        assert info is None or info.kind in ("shared", "exclusive")


class _FakeRepo:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def read_chunks(self, ids: Any) -> Any:
        return iter(self._chunks)


@given(chunks=st.lists(st.binary(max_size=300), max_size=4), valid=st.booleans())
@FUZZ
def test_item_stream_parser(chunks: list[bytes], valid: bool) -> None:
    if valid:
        chunks = [msgpack.packb({"path": "p", "n": i}) for i in range(3)] + chunks
    sizes = [(b"c" * 32, len(c)) for c in chunks]
    gen = Generation(_FakeRepo(chunks), GEN_ID, {}, sizes, 0)  # type: ignore[arg-type]
    try:
        for item in gen.items():
            assert isinstance(item, dict)
    except RepositoryError:
        pass
