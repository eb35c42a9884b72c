"""rsync v1 (``--engine rsync``): what the real agent stored, and bad input.

The byte-exact restores of every generation are in test_restore.py / test_subpath_owners.py
(the ``rsync-*`` fixtures, written by freezer 19.0.0 with tools/legacy_patches/
freezer-19.0.0-rsync-v1-py3.patch). Here: the fixtures really hold block deltas, truncations and
deletions; the two fixtures no restore can reproduce fail or warn as documented; streams
damaged after decompression (re-compressed, so only the v1 layer is wrong) are refused with an
error naming the data file, and nothing is left behind.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from freezer_ui.engines import legacy

from .helpers import (
    FIXTURES,
    copy_fixture,
    expected,
    leftovers,
    passphrase_file,
    scenarios,
    snapshot,
)

SCENARIO = "rsync-gzip-inc"


def _level_data(container: Path, level: int, chain: int = 0) -> Path:
    (b,) = legacy.discover(container)
    return [g for g in b.chains[chain].generations if g.level == level][-1].data_path


def _plain(path: Path) -> bytes:
    return zlib.decompress(path.read_bytes())


def _header(plain: bytes, name: bytes) -> list[bytes]:
    """The fields of ``name``'s header. Records follow each other without a separator, so the
    digits before the path may begin with the previous record's last field: take the shortest
    suffix of them that spans exactly one 20-field header."""
    m = re.search(rb"(\d+)\0" + re.escape(name) + rb"\0", plain)
    assert m, name
    digits = m.group(1)
    for k in range(1, len(digits) + 1):
        start = m.end(1) - k
        fields = plain[start : start + int(digits[-k:])].split(b"\0")
        if len(fields) == 20 and fields[19] in (b"0000", b"1111"):
            return fields
    raise AssertionError(name)


def test_the_fixture_holds_deltas_truncations_and_deletions() -> None:
    lvl0 = _plain(_level_data(FIXTURES / SCENARIO, 0))
    lvl1 = _plain(_level_data(FIXTURES / SCENARIO, 1))
    lvl2 = _plain(_level_data(FIXTURES / SCENARIO, 2))
    lvl3 = _plain(_level_data(FIXTURES / SCENARIO, 3))
    big = _header(lvl1, b"data/big.bin")
    assert (big[18], big[19]) == (b"1111", b"0000")  # a changed file: block delta
    end = lvl1.index(b"data/big.bin\0") - len(big[0]) - 1 + int(big[0])
    delta = b"\x008192\x009\x00\x001\x009\x0016\x00"  # blocks 1 and 9 (+ the empty tail)
    assert lvl1[end : end + len(delta)] == delta
    assert len(lvl1) < len(lvl0) / 4  # the 64 KiB file is not stored again
    assert _header(lvl2, b"data/big.bin")[6] == b"32768"  # truncated to 8 blocks
    assert _header(lvl1, b"docs/b.txt")[19] == b"1111"  # deleted...
    assert _header(lvl2, b"docs/b.txt")[19] == b"1111"  # ...and listed again at every level
    assert _header(lvl3, b"docs/a.txt")[19] == b"1111"  # renamed away with its directory
    assert b"\0link-to-dir\0" not in lvl0  # (none in this tree: v1 never stores one)


def test_encrypted_level_in_several_pieces_is_refused_with_the_reason(tmp_path: Path) -> None:
    (name,) = [s for s in scenarios(special=True) if expected(s).get("restore_error")]
    assert name == "rsync-gzip-enc-pieces"
    doc = expected(name)
    assert doc["restore_error"] == "CorruptArchive"
    with pytest.raises(legacy.CorruptArchive, match="restarts AES-CFB") as ei:
        legacy.restore(
            FIXTURES / name, doc["backup"], tmp_path / "o", passphrase_file=passphrase_file(name)
        )
    assert "/data" in str(ei.value)
    assert not (tmp_path / "o").exists()
    assert leftovers(tmp_path) == []


def test_a_shifted_file_is_restored_as_stored_with_a_warning(tmp_path: Path) -> None:
    """Upstream's v1 delta numbers the rolling checksum's outputs, not blocks: a file with
    bytes inserted mid-way is stored so that it cannot be rebuilt. We restore what it stored
    (everything else exact) and say which file is suspect."""
    doc = expected("rsync-gzip-shift")
    assert doc["lossy"] == {"1": ["data/big.bin"]}
    g0, g1 = doc["generations"]
    out = tmp_path / "o"
    res = legacy.restore(FIXTURES / "rsync-gzip-shift", doc["backup"], out, at=g1["timestamp"])
    (warning,) = [w for w in res.warnings if "does not line up" in w]
    assert "data/big.bin" in warning
    got = snapshot(out)
    assert {k for k in got if got[k] != g1["tree"][k]} == {"data/big.bin"}
    assert set(got) == set(g1["tree"])
    assert got["data/big.bin"]["size"] == g1["tree"]["data/big.bin"]["size"]
    # Level 0 alone is exact.
    legacy.restore(FIXTURES / "rsync-gzip-shift", doc["backup"], tmp_path / "z", at=g0["timestamp"])
    assert snapshot(tmp_path / "z") == g0["tree"]


def _damage(tmp_path: Path, level: int, edit) -> tuple[Path, Path]:
    container = copy_fixture(SCENARIO, tmp_path / "c")
    data = _level_data(container, level)
    data.write_bytes(zlib.compress(edit(_plain(data)), 9))
    return container, data


def _restore_fails(tmp_path: Path, container: Path, data: Path, error, match: str) -> None:
    doc = expected(SCENARIO)
    at = doc["generations"][3]["timestamp"]
    with pytest.raises(error, match=match) as ei:
        legacy.restore(container, doc["backup"], tmp_path / "o", at=at)
    assert str(data) in str(ei.value)
    assert not (tmp_path / "o").exists()
    assert leftovers(tmp_path) == []


def _sub_once(old: bytes, new: bytes):
    def edit(plain: bytes) -> bytes:
        assert plain.count(old) >= 1, old
        return plain.replace(old, new, 1)

    return edit


@pytest.mark.parametrize(
    ("level", "edit", "error", "match"),
    [
        # the stream cut inside a file's data (the compressor's end is intact)
        (0, lambda p: p[: p.index(b"readme line 3")], legacy.TruncatedArchive, "inside the data"),
        # cut inside a header
        (1, lambda p: p[: p.index(b"data/big.bin") + 5], legacy.TruncatedArchive, "a header"),
        # a header length that is not one
        (0, lambda p: b"x" + p[1:], legacy.CorruptArchive, "not an rsync v1 stream"),
        (2, _sub_once(b"94\x00emptydir", b"9z\x00emptydir"), legacy.CorruptArchive, "header"),
        # a wrong structure version / field count
        (1, _sub_once(b"\x00data/big.bin\x001\x00", b"\x00data/big.bin\x002\x00"),
         legacy.CorruptArchive, "bad rsync v1 header"),
        # block indices out of order, or not numbers
        (1, _sub_once(b"\x001\x009\x0016\x00", b"\x009\x001\x0016\x00"),
         legacy.CorruptArchive, "out of order"),
        (1, _sub_once(b"\x001\x009\x0016\x00", b"\x001\x00x\x0016\x00"),
         legacy.CorruptArchive, "block indices"),
        # an unknown file type
        (1, _sub_once(b"\x00root\x00root\x00r\x00\x00", b"\x00root\x00root\x00z\x00\x00"),
         legacy.CorruptArchive, "file type"),
        # a delta for a file no earlier level restored
        (1, _sub_once(b"\x00data/big.bin\x00", b"\x00data/bog.bin\x00"),
         legacy.CorruptArchive, "no earlier level restored"),
        # no entry at all (it would read as "everything deleted")
        (2, lambda p: b"", legacy.CorruptArchive, "holds no entry"),
        # garbage after the last record
        (3, lambda p: p + b"7", legacy.TruncatedArchive, "header length"),
    ],
    ids=["cut-data", "cut-header", "no-length", "bad-length", "version", "order", "index",
         "type", "no-base", "empty", "trailing"],
)  # fmt: skip
def test_damaged_v1_streams_are_refused(tmp_path, level, edit, error, match) -> None:
    container, data = _damage(tmp_path, level, edit)
    _restore_fails(tmp_path, container, data, error, match)


def test_v1_metadata_with_an_unknown_compression_is_refused(tmp_path: Path) -> None:
    container = copy_fixture(SCENARIO, tmp_path / "c")
    for meta in container.rglob("metadata/*/*/*/*/metadata"):
        meta.write_text('{"engine_name": "rsync", "compression": "xz", "encryption": false}')
    with pytest.raises(legacy.UnsupportedBackup, match="rsync v1 compression 'xz'"):
        legacy.restore(container, expected(SCENARIO)["backup"], tmp_path / "o")
    assert not (tmp_path / "o").exists()
