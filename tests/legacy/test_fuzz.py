"""Hypothesis fuzzing: any input gives a result or one of our errors — never another exception,
never a hang, never a write outside the target."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freezer_ui.engines.legacy.errors import LegacyError
from freezer_ui.engines.legacy.extract import TreeWriter
from freezer_ui.engines.legacy.stream import ChunkReader, decompress, decrypt
from freezer_ui.engines.legacy.tarstream import TarReader

from .helpers import dumpdir, tar_end, tar_header, tar_member

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _drain(data: bytes) -> None:
    reader = TarReader(ChunkReader([data[i : i + 700] for i in range(0, len(data), 700)]), "fuzz")
    for m in reader:
        for _ in reader.data(m):
            pass


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    try:
        _drain(data)
    except LegacyError:
        pass


VALID = (
    dumpdir("./", ["Ya", "Dd", "Ysl"])
    + tar_member("a", b"x" * 700)
    + tar_member("d/", typeflag=b"5")
    + tar_member("sl", typeflag=b"2", linkname="a")
    + tar_end()
)


def _fix_checksums(buf: bytearray) -> None:
    """Recompute every header checksum so mutations reach the field parsers, not just the sum."""
    off = 0
    while off + 512 <= len(buf):
        h = buf[off : off + 512]
        if h == bytes(512):
            break
        h[148:156] = b" " * 8
        h[148:156] = f"{sum(h):06o}".encode() + b"\0 "
        buf[off : off + 512] = h
        try:
            size = int(bytes(h[124:136]).replace(b"\0", b" ").strip() or b"0", 8)
        except ValueError:
            break
        off += 512 + size + (-size % 512)


@FAST
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=12),
    st.booleans(),
)
def test_mutated_valid_archive(mutations: list[tuple[int, int]], fix: bool) -> None:
    buf = bytearray(VALID)
    for pos, val in mutations:
        buf[pos] = val
    if fix:
        _fix_checksums(buf)
    try:
        _drain(bytes(buf))
    except LegacyError:
        pass


@FAST
@given(st.sampled_from(["gzip", "bzip2", "xz"]), st.binary(max_size=2048))
def test_decompressors_on_garbage(compression: str, data: bytes) -> None:
    try:
        for _ in decompress([data], compression, "fuzz"):
            pass
    except LegacyError:
        pass


@FAST
@given(st.binary(max_size=64))
def test_decrypt_on_garbage(data: bytes) -> None:
    try:
        for _ in decrypt([data], b"pw", "sha256", "fuzz"):
            pass
    except LegacyError:
        pass


NAMES = st.lists(
    st.sampled_from(["a", "b", "..", ".", "", "d", "/", "lnk", "out"]), min_size=1, max_size=4
).map("/".join)
MEMBERS = st.lists(
    st.tuples(
        st.sampled_from([b"0", b"1", b"2", b"5", b"D", b"3", b"6", b"Z"]),
        NAMES,
        st.one_of(NAMES, st.just("OUTSIDE")),
        st.lists(
            st.sampled_from(["Ya", "Nb", "Dd", "Rd", "Tlnk", "X./t", "R", "T", "R../x"]), max_size=4
        ),
    ),
    max_size=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MEMBERS)
def test_random_member_sequences_stay_inside(members: list) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        outside = Path(tmp) / "out"
        outside.mkdir()
        (outside / "victim").write_text("original")
        root = Path(tmp) / "root"
        root.mkdir()
        parts = []
        for typ, name, link, entries in members:
            link = str(outside) if link == "OUTSIDE" else link
            if typ == b"D":
                parts.append(dumpdir(name[:90] or ".", entries))
            elif typ in (b"0", b"Z"):
                parts.append(tar_member(name[:90], b"data", typeflag=typ))
            else:
                parts.append(tar_header(name[:90], typeflag=typ, linkname=link[:90]))
        data = b"".join(parts) + tar_end()
        writer = TreeWriter(str(root))
        try:
            reader = TarReader(ChunkReader([data]), "fuzz")
            for m in reader:
                writer.apply(m, reader.data(m))
            writer.finish()
        except LegacyError:
            pass
        finally:
            writer.close()
        assert sorted(os.listdir(tmp)) == ["out", "root"]
        assert os.listdir(outside) == ["victim"]
        assert (outside / "victim").read_text() == "original"


# ------------------------------------------------------------------ rsyncv2 increments

_NAMES = st.sampled_from(["a", "d", "d/b", "lnk", "lnk/x", "../esc", "/abs", "d/../a", ""])
_INODE = st.fixed_dictionaries(
    {
        "mode": st.sampled_from([0o100644, 0o040755, 0o120777, 0o010644, 0o140755, 7]),
        "mtime": st.integers(0, 2**31),
        "size": st.integers(0, 9000),
    }
)
_ENTRY = st.one_of(
    st.fixed_dictionaries({"path": _NAMES, "deleted": st.just(True)}),
    st.fixed_dictionaries(
        {"path": _NAMES, "inode": _INODE, "new_level": st.booleans()},
        optional={
            "deltas": st.one_of(
                st.tuples(st.integers(0, 9000), st.lists(st.integers(-1, 3), max_size=4)),
                st.text(max_size=3),
            ),
            "lname": st.sampled_from(["a", "/tmp", "../.."]),
        },
    ),
)


def _rsync_level(root: Path, level: int, ts: int, headers: list, payload: bytes) -> None:
    import json
    import zlib

    import msgpack

    rel = Path("rsync") / "host_f" / "1700000000" / f"{level}_{ts}"
    (root / "data" / rel).mkdir(parents=True)
    (root / "data" / rel / "data").write_bytes(zlib.compress(msgpack.packb(headers) + payload))
    (root / "metadata" / rel).mkdir(parents=True)
    meta = {"engine_name": "rsync", "compression": "gzip", "rsync_block_size": 4096}
    (root / "metadata" / rel / "metadata").write_text(json.dumps(meta | {"encryption": False}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ENTRY, max_size=6), st.binary(max_size=12000))
def test_rsyncv2_increment_headers_never_escape(headers: list, payload: bytes) -> None:
    from freezer_ui.engines import legacy

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        outside = base / "outside"
        outside.mkdir()
        (outside / "x").write_bytes(b"original")
        c = base / "c"
        reg, lnk, dirm = 0o100644, 0o120777, 0o040755
        level0 = [
            {"path": "d", "inode": {"mode": dirm, "mtime": 1, "size": 0}},
            {"path": "a", "inode": {"mode": reg, "mtime": 1, "size": 5000}},
            {"path": "lnk", "inode": {"mode": lnk, "mtime": 1, "size": 0}, "lname": str(outside)},
        ]
        _rsync_level(c, 0, 1700000000, level0, b"A" * 5000)
        _rsync_level(c, 1, 1700000010, headers, payload)
        try:
            legacy.restore(c, "host_f", base / "out")
        except LegacyError:
            pass
        assert sorted(os.listdir(outside)) == ["x"]
        assert (outside / "x").read_bytes() == b"original"
