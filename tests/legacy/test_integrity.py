"""Wrong/missing passphrases, truncated and corrupted data: clear errors, nothing half-restored."""

from __future__ import annotations

from pathlib import Path

import pytest

from freezer_ui.engines import legacy

from .helpers import (
    FIXTURES,
    copy_fixture,
    expected,
    leftovers,
    passphrase_file,
    tar_end,
    tar_member,
    write_container,
)

ENCRYPTED = [
    "tar-gzip-enc-sha256",
    "tar-xz-enc-md5",
    "rsyncv2-gzip-enc",
    "rsync-gzip-enc",
    "rsync-bzip2-enc",
]


@pytest.mark.parametrize("scenario", ENCRYPTED)
def test_wrong_passphrase_fails_before_writing(scenario: str, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not the passphrase\n")
    target = tmp_path / "empty-target"
    target.mkdir()
    key = expected(scenario)["backup"]
    with pytest.raises(legacy.WrongPassphrase) as ei:
        legacy.restore(FIXTURES / scenario, key, target, passphrase_file=wrong)
    assert "/data" in str(ei.value) and scenario in str(ei.value)
    assert list(target.iterdir()) == []
    assert leftovers(tmp_path) == []
    with pytest.raises(legacy.WrongPassphrase):
        legacy.restore(FIXTURES / scenario, key, tmp_path / "new", passphrase_file=wrong)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("scenario", ENCRYPTED)
def test_missing_passphrase(scenario: str, tmp_path: Path) -> None:
    with pytest.raises(legacy.PassphraseRequired):
        legacy.restore(FIXTURES / scenario, expected(scenario)["backup"], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_passphrase_is_first_line_like_openssl(tmp_path: Path) -> None:
    # openssl -pass file:F uses the first line only: extra lines must not matter.
    pf = tmp_path / "p"
    pf.write_bytes(passphrase_file("tar-gzip-enc-sha256").read_bytes() + b"second line\n")
    legacy.restore(
        FIXTURES / "tar-gzip-enc-sha256", "legacyhost_fs", tmp_path / "o", passphrase_file=pf
    )
    assert (tmp_path / "o" / "readme.txt").exists()


def test_md5_and_sha256_digests_are_told_apart() -> None:
    from freezer_ui.engines.legacy.restore import probe_digest
    from freezer_ui.engines.legacy.stream import read_passphrase_file

    for scenario, digest in (("tar-gzip-enc-sha256", "sha256"), ("tar-xz-enc-md5", "md5")):
        (b,) = legacy.discover(FIXTURES / scenario)
        pw = read_passphrase_file(passphrase_file(scenario))
        assert {probe_digest(g, pw) for g in b.generations} == {digest}


def _last_data(container: Path) -> Path:
    (b,) = legacy.discover(container)
    return b.generations[-1].data_path


DAMAGEABLE = [
    "tar-gzip-maxlevel",
    "tar-bzip2",
    "tar-xz",
    *ENCRYPTED,
    "rsyncv2-gzip-l0",
    "rsyncv2-bzip2-l0",
    "rsyncv2-gzip-inc",
    "rsyncv2-bzip2-inc",
    "rsync-gzip-inc",
    "rsync-bzip2-inc",
]


@pytest.mark.parametrize("scenario", DAMAGEABLE)
@pytest.mark.parametrize("keep", [0.5, -1, -9, 20])
def test_truncated_data_is_an_error_naming_the_file(
    scenario: str, keep: float, tmp_path: Path
) -> None:
    container = copy_fixture(scenario, tmp_path / "c")
    data = _last_data(container)
    raw = data.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else (keep if keep > 0 else len(raw) + keep)
    data.write_bytes(raw[:n])
    target = tmp_path / "o"
    with pytest.raises(legacy.CorruptArchive) as ei:
        legacy.restore(
            container,
            expected(scenario)["backup"],
            target,
            passphrase_file=passphrase_file(scenario),
        )
    assert str(data) in str(ei.value)
    assert not target.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("scenario", DAMAGEABLE)
@pytest.mark.parametrize("where", [0.3, 0.5, 0.8])
def test_corrupted_data_is_an_error_naming_the_file(
    scenario: str, where: float, tmp_path: Path
) -> None:
    container = copy_fixture(scenario, tmp_path / "c")
    data = _last_data(container)
    raw = bytearray(data.read_bytes())
    pos = max(32, int(len(raw) * where))  # past the openssl salt / compressor header
    for i in range(pos, min(pos + 4, len(raw))):
        raw[i] ^= 0x5A
    data.write_bytes(bytes(raw))
    target = tmp_path / "o"
    with pytest.raises(legacy.LegacyError) as ei:
        legacy.restore(
            container,
            expected(scenario)["backup"],
            target,
            passphrase_file=passphrase_file(scenario),
        )
    assert str(data) in str(ei.value)
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_corrupt_header_in_uncompressed_archive(tmp_path: Path) -> None:
    good = tar_member("a.txt", b"hello") + tar_member("b.txt", b"world") + tar_end()
    bad = bytearray(good)
    bad[512 + 512 + 3] ^= 0x01  # second header's name: checksum no longer matches
    write_container(tmp_path / "c", [bytes(bad)], compression="none")
    with pytest.raises(legacy.CorruptArchive, match="checksum"):
        legacy.restore(tmp_path / "c", "host_evil", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_missing_end_of_archive_marker(tmp_path: Path) -> None:
    write_container(tmp_path / "c", [tar_member("a.txt", b"hello")], compression="none")
    with pytest.raises(legacy.TruncatedArchive, match="end-of-archive"):
        legacy.restore(tmp_path / "c", "host_evil", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_metadata_says_encrypted_but_data_is_not(tmp_path: Path) -> None:
    container = copy_fixture("tar-gzip-singlefile", tmp_path / "c")
    for meta in container.rglob("metadata/*/*/*/*/metadata"):
        meta.write_text('{"engine_name": "tar", "compression": "gzip", "encryption": true}')
    pf = tmp_path / "p"
    pf.write_text("x\n")
    with pytest.raises(legacy.CorruptArchive, match="Salted__"):
        legacy.restore(container, "legacyhost_file", tmp_path / "o", passphrase_file=pf)


def test_unsupported_engine_is_refused(tmp_path: Path) -> None:
    container = copy_fixture("tar-gzip-singlefile", tmp_path / "c")
    for meta in container.rglob("metadata/*/*/*/*/metadata"):
        meta.write_text('{"engine_name": "rsyncv2", "compression": "gzip", "encryption": false}')
    with pytest.raises(legacy.UnsupportedBackup, match="rsyncv2"):
        legacy.restore(container, "legacyhost_file", tmp_path / "o")


def test_unreadable_metadata_is_noted(tmp_path: Path) -> None:
    container = copy_fixture("tar-gzip-singlefile", tmp_path / "c")
    doc = expected("tar-gzip-singlefile")
    last = doc["generations"][-1]["timestamp"]
    (meta,) = container.rglob(f"metadata/*/*/*/*_{last}/metadata")
    meta.write_text("{not json")
    (b,) = legacy.discover(container)
    assert [g.level for g in b.generations] == [0]
    assert any("unreadable metadata" in n for n in b.notes)
