"""rsyncv2 above level 0: block deltas, truncation, deletion (fixtures by the patched 19.0.0)."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import msgpack
import pytest

from freezer_ui.engines import legacy

from .helpers import FIXTURES, expected, leftovers, snapshot

SCENARIO = "rsyncv2-gzip-inc"


def _headers(g: legacy.Generation) -> tuple[list[dict], bytes]:
    raw = zlib.decompress(g.data_path.read_bytes())
    u = msgpack.Unpacker(raw=False)
    u.feed(raw)
    h = u.unpack()
    return h, raw[u.tell() :]


def _backup(container: Path = FIXTURES / SCENARIO) -> legacy.LegacyBackup:
    (b,) = legacy.discover(container)
    return b


def test_fixture_really_holds_block_deltas_truncation_and_deletions() -> None:
    """Guard against a fixture that silently degraded into full copies."""
    gens = _backup().generations
    assert [g.level for g in gens] == [0, 1, 2, 3, 0, 1]
    h1, _ = _headers(gens[1])
    by = {h["path"]: h for h in h1}
    # big.bin: blocks 1 and 9 changed in place, only those two 4 KiB blocks stored.
    assert by["data/big.bin"]["deltas"] == [8192, [1, 9]]
    assert by["data/random.bin"]["deltas"][1] == [4]  # its short last block
    assert by["docs/b.txt"] == {"path": "docs/b.txt", "deleted": True}
    h2, _ = _headers(gens[2])
    by2 = {h["path"]: h for h in h2}
    assert by2["data/zero.bin"]["inode"]["size"] == 10_000  # truncated mid-block
    assert by2["data/big.bin"]["inode"]["size"] == 8 * 4096  # truncated on a block boundary
    h3, _ = _headers(gens[3])
    deleted = {h["path"] for h in h3 if h.get("deleted")}
    assert {"docs", "docs/sub/c.txt", "secret/key.pem"} <= deleted
    assert gens[1].size < gens[0].size / 3  # the increment stores changed blocks, not files


def test_block_patch_keeps_unchanged_blocks_from_level_0(tmp_path: Path) -> None:
    doc = expected(SCENARIO)
    g1 = doc["generations"][1]
    res = legacy.restore(FIXTURES / SCENARIO, doc["backup"], tmp_path / "o", at=g1["timestamp"])
    assert [g.level for g in res.generations] == [0, 1]
    assert snapshot(tmp_path / "o") == g1["tree"]
    big = (tmp_path / "o" / "data" / "big.bin").read_bytes()
    assert len(big) == 65_536 and big[4096 + 100 : 4096 + 117] == b"changed block one"


def test_truncation_and_type_changes(tmp_path: Path) -> None:
    doc = expected(SCENARIO)
    for i in (2, 3):
        g = doc["generations"][i]
        out = tmp_path / f"o{i}"
        res = legacy.restore(FIXTURES / SCENARIO, doc["backup"], out, at=g["timestamp"])
        assert snapshot(out) == g["tree"], i
    assert (tmp_path / "o2" / "data" / "zero.bin").stat().st_size == 10_000
    assert (tmp_path / "o3" / "secret").is_file()
    assert (tmp_path / "o3" / "data" / "zero.bin" / "inner.txt").is_file()
    assert not (tmp_path / "o3" / "docs").exists()
    assert res.stats.removed >= 2  # docs/ (a tree) at level 3, docs/b.txt at level 1


def _rewrite_level(container: Path, index: int, edit) -> None:
    g = _backup(container).generations[index]
    headers, rest = _headers(g)
    headers, rest = edit(headers, rest)
    g.data_path.write_bytes(zlib.compress(msgpack.packb(headers) + rest))


@pytest.mark.parametrize(
    "damage",
    [
        "block outside the file",
        "length mismatch",
        "unsorted blocks",
        "not a list",
    ],
)
def test_inconsistent_deltas_are_corruption(damage: str, tmp_path: Path) -> None:
    c = tmp_path / "c"
    shutil.copytree(FIXTURES / SCENARIO, c)

    def edit(headers, rest):
        h = next(h for h in headers if h["path"] == "data/big.bin")
        if damage == "block outside the file":
            h["deltas"] = [8192, [1, 99]]
        elif damage == "length mismatch":
            h["deltas"] = [8000, [1, 9]]
        elif damage == "unsorted blocks":
            h["deltas"] = [8192, [9, 1]]
        else:
            h["deltas"] = "garbage"
        return headers, rest

    _rewrite_level(c, 1, edit)
    with pytest.raises(legacy.CorruptArchive, match="big.bin"):
        legacy.restore(c, "legacyhost_rs", tmp_path / "o", at=_backup(c).generations[1].timestamp)
    assert not (tmp_path / "o").exists()
    assert leftovers(tmp_path) == []


def test_delta_for_a_file_no_earlier_level_restored(tmp_path: Path) -> None:
    c = tmp_path / "c"
    shutil.copytree(FIXTURES / SCENARIO, c)

    def edit(headers, rest):
        h = next(h for h in headers if h["path"] == "data/big.bin")
        h["path"] = "data/never-there.bin"
        return headers, rest

    _rewrite_level(c, 1, edit)
    with pytest.raises(legacy.CorruptArchive, match="never-there.bin.*earlier level"):
        legacy.restore(c, "legacyhost_rs", tmp_path / "o", at=_backup(c).generations[1].timestamp)
    assert not (tmp_path / "o").exists()


def test_delta_aimed_through_a_symlink_is_skipped(tmp_path: Path) -> None:
    """A delta naming a path that is a symlink at restore time never writes through it."""
    c = tmp_path / "c"
    shutil.copytree(FIXTURES / SCENARIO, c)

    def edit(headers, rest):
        h = next(h for h in headers if h["path"] == "data/big.bin")
        h["path"] = "link-to-readme"  # a symlink restored by level 0
        h["inode"]["size"] = 65_536
        return headers, rest

    _rewrite_level(c, 1, edit)
    res = legacy.restore(c, "legacyhost_rs", tmp_path / "o", at=_backup(c).generations[1].timestamp)
    assert any("link-to-readme" in w and "not a regular file" in w for w in res.warnings)
    # the data after the skipped delta was still read in step: the rest restored right
    want = expected(SCENARIO)["generations"][1]["tree"]
    got = snapshot(tmp_path / "o")
    assert got["readme.txt"] == want["readme.txt"]
    assert got["docs/new.txt"] == want["docs/new.txt"]


# ------------------------------------------------------------------ encrypted rsyncv2

ENC = "rsyncv2-gzip-enc"


def test_encrypted_with_a_passphrase_without_its_newline(tmp_path: Path) -> None:
    """The agent keys with the file's first line *with* its newline; a secret store's value
    has none: both restore."""
    doc = expected(ENC)
    pw = (FIXTURES / f"{ENC}.pass").read_bytes()
    assert pw.endswith(b"\n")
    for i, given in enumerate((pw.rstrip(b"\n"), pw.decode())):
        out = tmp_path / f"o{i}"
        legacy.restore(FIXTURES / ENC, doc["backup"], out, passphrase=given)
        assert snapshot(out) == doc["generations"][-1]["tree"]


def test_encrypted_level_in_two_segments_is_explained(tmp_path: Path) -> None:
    """What the agent writes for a level over max_segment_size: each segment under a fresh
    AES-CFB stream with the same key and IV. Rebuilt here from the fixture's own level 0."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    from freezer_ui.engines.legacy.stream import CFB, evp_bytes_to_key

    c = tmp_path / "c"
    shutil.copytree(FIXTURES / ENC, c)
    g = _backup(c).generations[0]
    raw = g.data_path.read_bytes()
    pw = (FIXTURES / f"{ENC}.pass").read_bytes().split(b"\n")[0] + b"\n"
    key, iv = evp_bytes_to_key(pw, raw[8:16], "md5")
    plain = Cipher(algorithms.AES(key), CFB(iv)).decryptor().update(raw[16:])
    cut = len(plain) // 2
    seg = [
        Cipher(algorithms.AES(key), CFB(iv)).encryptor().update(p)
        for p in (plain[:cut], plain[cut:])
    ]
    g.data_path.write_bytes(raw[:16] + seg[0] + seg[1])
    with pytest.raises(legacy.CorruptArchive, match="more than one segment"):
        legacy.restore(
            c, "legacyhost_rs", tmp_path / "o", at=g.timestamp,
            passphrase_file=FIXTURES / f"{ENC}.pass",
        )  # fmt: skip
    assert not (tmp_path / "o").exists()
