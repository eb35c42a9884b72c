"""Shared helpers for the legacy-restore tests: fixtures, tree snapshots, raw tar writing."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def scenarios(*, special: bool = False) -> list[str]:
    """Fixtures whose every generation restores to the tree recorded for it; with ``special``
    the others instead, whose document says why: ``restore_error`` (no restore can succeed,
    e.g. encrypted rsync v1 in several pieces) or ``lossy`` (level → paths the agent itself
    stored wrongly, e.g. an rsync v1 delta of a shifted file)."""
    names = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))
    doc = {n: expected(n) for n in names}
    return [n for n in names if bool(doc[n].get("restore_error") or doc[n].get("lossy")) == special]


def expected(scenario: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{scenario}.expected.json").read_text())


def passphrase_file(scenario: str) -> Path | None:
    doc = expected(scenario)
    return FIXTURES / doc["passphrase_file"] if doc.get("passphrase_file") else None


def copy_fixture(scenario: str, dest: Path) -> Path:
    shutil.copytree(FIXTURES / scenario, dest)
    return dest


def snapshot(root: Path) -> dict[str, dict[str, Any]]:
    """Same shape as tools/make_legacy_fixtures.py records (written independently on purpose)."""
    out: dict[str, dict[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = {"type": "symlink", "target": os.readlink(p)}
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = {"type": "dir", "mode": stat.S_IMODE(st.st_mode)}
            else:
                out[rel] = {
                    "type": "file",
                    "mode": stat.S_IMODE(st.st_mode),
                    "size": st.st_size,
                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                    "mtime": int(st.st_mtime),
                }
    return dict(sorted(out.items()))


def leftovers(parent: Path) -> list[str]:
    """Temporary restore directories left in ``parent`` (there must never be any)."""
    return sorted(p.name for p in parent.iterdir() if ".legacy-restore-" in p.name)


# ------------------------------------------------------------------ raw GNU tar writing


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def tar_header(
    name: str | bytes,
    typeflag: bytes = b"0",
    size: int = 0,
    linkname: str = "",
    mode: int = 0o644,
    mtime: int = 1_600_000_000,
    devmajor: int = 0,
    devminor: int = 0,
    uid: int = 0,
    gid: int = 0,
    uname: str = "root",
    gname: str = "root",
) -> bytes:
    """One GNU-format header block, checksum filled in (names must fit 100 bytes)."""
    raw = name.encode() if isinstance(name, str) else name
    h = bytearray(512)
    h[0 : len(raw)] = raw
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[156:157] = typeflag
    ln = linkname.encode()
    h[157 : 157 + len(ln)] = ln
    h[257:265] = b"ustar  \0"
    h[265 : 265 + len(uname)] = uname.encode()
    h[297 : 297 + len(gname)] = gname.encode()
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    h[148:156] = b" " * 8
    h[148:156] = f"{sum(h):06o}".encode() + b"\0 "
    return bytes(h)


def tar_member(name: str, data: bytes = b"", **kw: Any) -> bytes:
    body = data + bytes(-len(data) % 512)
    return tar_header(name, size=len(data), **kw) + body


def dumpdir(name: str, entries: list[str], **kw: Any) -> bytes:
    """A 'D' member; entries are code+name strings like 'Yfile', 'Dsub', 'R./a', 'T./b'."""
    data = b"".join(e.encode() + b"\0" for e in entries) + b"\0"
    return tar_member(name, data, typeflag=b"D", mode=0o755, **kw)


def tar_end() -> bytes:
    return bytes(1024)


def write_container(
    container: Path,
    levels: list[bytes],
    key: str = "host_evil",
    start: int = 1_700_000_000,
    compression: str = "gzip",
) -> None:
    """Store raw tar streams as a Freezer chain (levels 0..n), the layout the agent writes."""
    l0 = start
    for level, tar in enumerate(levels):
        ts = start + level * 10
        rel = Path("tar") / key / str(l0) / f"{level}_{ts}"
        d = container / "data" / rel
        d.mkdir(parents=True)
        (d / "data").write_bytes(gzip.compress(tar) if compression == "gzip" else tar)
        (d / "engine_metadata").write_text("{}")
        m = container / "metadata" / rel
        m.mkdir(parents=True)
        meta = {"engine_name": "tar", "compression": compression, "encryption": False}
        (m / "metadata").write_text(json.dumps(meta))


def other_warnings(warnings: list[str]) -> list[str]:
    """Warnings other than the one a non-root restore of root-owned fixtures must give."""
    if os.geteuid() == 0:
        return list(warnings)
    return [w for w in warnings if not w.startswith("owners not restored")]
