"""Why we parse GNU incremental headers ourselves, and what the reader yields on real archives."""

from __future__ import annotations

import tarfile

from freezer_ui.engines import legacy
from freezer_ui.engines.legacy.stream import ChunkReader, plain_stream
from freezer_ui.engines.legacy.tarstream import TarReader

from .helpers import FIXTURES


def _level1():
    (b,) = legacy.discover(FIXTURES / "tar-gzip-maxlevel")
    return b.generations[1]


def test_stdlib_tarfile_garbles_incremental_member_names() -> None:
    # GNU incremental headers keep atime/ctime where ustar keeps "prefix"; tarfile glues them on.
    g = _level1()
    with tarfile.open(g.data_path, "r:gz") as t:
        names = [m.name for m in t.getmembers()]
    assert any(not n.startswith("./") for n in names)


def test_reader_yields_clean_names_and_dumpdirs() -> None:
    g = _level1()
    reader = TarReader(ChunkReader(plain_stream(g.data_path, "gzip", None, None)), "x")
    members = list(reader)
    assert reader.ended
    assert all(m.name.startswith("./") for m in members)
    root = next(m for m in members if m.name == "./")
    assert root.type == b"D" and root.dumpdir is not None
    assert ("N", "bin") not in root.dumpdir  # directories are listed with code D
    assert ("D", "docs") in root.dumpdir and ("Y", "readme.txt") in root.dumpdir
    long_names = [m.name for m in members if len(m.name) > 100]
    assert long_names  # GNU 'L' long-name records were folded in


def test_signed_and_unsigned_checksums_are_accepted() -> None:
    import pytest

    from freezer_ui.engines.legacy.errors import CorruptArchive

    from .helpers import tar_header

    h = bytearray(tar_header("a"))
    h[265:269] = b"\xe9\xe9\xe9\xe9"  # high bytes make the two sums differ
    h[148:156] = b" " * 8
    unsigned = sum(h)
    signed = sum(b - 256 if b > 127 else b for b in h)
    reader = TarReader(ChunkReader([]), "x")
    for value in (unsigned, signed):
        h[148:156] = f"{value:06o}".encode() + b"\0 "
        reader._check_header(bytes(h), 0)
    h[148:156] = f"{unsigned + 1:06o}".encode() + b"\0 "
    with pytest.raises(CorruptArchive, match="checksum"):
        reader._check_header(bytes(h), 0)
