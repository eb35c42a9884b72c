"""POSIX ACLs in upstream tar backups (pax SCHILY.acl.*), restored as system.posix_acl_* xattrs.

The agent never passes --acls; the ``tar-gzip-acls`` fixture was written by the real 19.0.0
agent with ``TAR_OPTIONS="--acls --format=posix"`` in its environment (GNU tar reads it), the
one way upstream archives carry ACLs. The generator recorded each generation's ACL xattrs
from the source tree; a restore must give them back byte for byte, and no others.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from freezer_ui.engines import legacy
from freezer_ui.engines.legacy import acl
from freezer_ui.engines.legacy.extract import TreeWriter
from freezer_ui.engines.legacy.tarstream import Member

from .helpers import FIXTURES, expected, snapshot

SCENARIO = "tar-gzip-acls"


def _acls_supported(where: Path) -> bool:
    probe = where / ".acl-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(
            probe,
            acl.ACCESS,
            acl.to_xattr("user::rw-\nuser:0:r--\ngroup::r--\nmask::r--\nother::---"),
        )
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def _acls_of(root: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for p in [root, *sorted(root.rglob("*"))]:
        if p.is_symlink():
            continue
        for kind, name in acl.XATTRS.items():
            try:
                out.setdefault(str(p.relative_to(root)), {})[kind] = os.getxattr(p, name).hex()
            except OSError:
                pass
    return {k: v for k, v in out.items() if v}


@pytest.mark.parametrize("index", [0, 1])
def test_every_generation_restores_its_acls_byte_exact(index: int, tmp_path: Path) -> None:
    if not _acls_supported(tmp_path):
        pytest.skip("this filesystem stores no POSIX ACLs")
    doc = expected(SCENARIO)
    g = doc["generations"][index]
    assert g["acls"]["readme.txt"]["access"] and g["acls"]["shared"]["default"]
    out = tmp_path / "o"
    res = legacy.restore(FIXTURES / SCENARIO, doc["backup"], out, at=g["timestamp"])
    assert not [w for w in res.warnings if "ACL" in w]
    assert snapshot(out) == g["tree"]
    got = _acls_of(out)
    got.pop(".", None)  # the target directory itself is ours, not the archive's root entry
    assert got == g["acls"]


def test_the_fixture_really_carries_pax_acl_records() -> None:
    import gzip

    (b,) = legacy.discover(FIXTURES / SCENARIO)
    raw = gzip.decompress(b.generations[0].data_path.read_bytes())
    assert b"SCHILY.acl.access=user::rw-\nuser:nobody:r--\n" in raw
    assert b"SCHILY.acl.default=user::rwx\ngroup::r-x\ngroup:nogroup:rwx\n" in raw


def _entries(value: bytes) -> list[tuple[int, int, int]]:
    assert value[:4] == struct.pack("<I", 2)
    return [struct.unpack("<HHI", value[i : i + 8]) for i in range(4, len(value), 8)]


def test_text_to_xattr() -> None:
    u = acl.UNDEFINED_ID
    value = acl.to_xattr(
        "user::rw-\ngroup::r--\nuser:nobody:r-x\ngroup:4242:rw-\nmask::rwx\nother::---\n"
    )
    assert _entries(value) == [
        (acl.USER_OBJ, 6, u), (acl.USER, 5, 65534), (acl.GROUP_OBJ, 4, u),
        (acl.GROUP, 6, 4242), (acl.MASK, 7, u), (acl.OTHER, 0, u),
    ]  # fmt: skip
    # star's form with the id after the permissions, and commas; the id wins over the name
    assert _entries(acl.to_xattr("u::rw-,u:someone:r--:1001,g::r--,m::r--,o::r--"))[1] == (
        acl.USER, 4, 1001,
    )  # fmt: skip
    assert acl.to_xattr("user::rwx\ngroup::r-x\nother::r-x\n") is None  # minimal: the mode
    for bad in (
        "user::rw-\nuser:no-such-user-here:r--\ngroup::r--\nmask::r--\nother::---",
        "user::rw-\ngroup::r--",  # no other
        "user::rw-\nuser:0:r--\ngroup::r--\nother::---",  # named entry without a mask
        "user::rwz\ngroup::r--\nother::---",
        "owner::rw-\ngroup::r--\nother::---",
        "user::rw-\nuser:0:r--\nuser:0:rw-\ngroup::r--\nmask::rw-\nother::---",
    ):
        with pytest.raises(acl.BadACL):
            acl.to_xattr(bad)


def test_an_acl_that_cannot_be_set_is_a_warning_and_the_file_is_restored(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    w = TreeWriter(str(root))
    m = Member(
        name="f.txt", type=b"0", mode=0o640, uid=0, gid=0, size=2, mtime=0,
        acls={"access": "user::rw-\nuser:no-such-user-here:r--\ngroup::r--\nmask::r--\nother::---"},
    )  # fmt: skip
    w.apply(m, iter([b"hi"]))
    w.close()
    assert (root / "f.txt").read_bytes() == b"hi"
    (warning,) = w.stats.warnings
    assert "access ACL of 'f.txt' not set" in warning and "no-such-user-here" in warning
