"""Export a generation (or a subtree) as a standard tar stream.

The archive is written with :mod:`tarfile` in streaming mode (``"w|"``, PAX format: long and
non-ASCII names, nanosecond-ish times, xattrs as ``SCHILY.xattr.*``), so the output may be a
pipe. Regular files are streamed chunk by chunk; sparse files are expanded (holes as zeros).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from freezer_ui.engines.safepath import UnsafePath, normalize_selection, split_item_path
from freezer_ui.engines.tar.restore import iter_file_data, selected


class ChunkReader:
    """File-like ``read(n)`` over an iterator of byte chunks; returns exactly ``n`` bytes until
    the end (``tarfile.copyfileobj`` treats a short read as truncation)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = chunks
        self._buf = b""
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            rest = [self._buf[self._pos :], *self._it]
            self._buf, self._pos = b"", 0
            return b"".join(rest)
        out: list[bytes] = []
        need = n
        while need > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                nxt = next(self._it, None)
                if nxt is None:
                    break
                self._buf, self._pos = nxt, 0
                continue
            take = min(avail, need)
            out.append(self._buf[self._pos : self._pos + take])
            self._pos += take
            need -= take
        return b"".join(out)


_TYPES = {
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
}


def export_tar(
    repo: Any,
    gen_id: str,
    out: BinaryIO,
    *,
    paths: Sequence[str] | None = None,
    progress: Any | None = None,
) -> dict[str, int]:
    """Write generation ``gen_id`` (or the items at/under ``paths``) to ``out`` as a tar stream.

    Unsafe manifest paths are left out (a tar with ``../`` names would be a trap for whoever
    extracts it). Returns ``{"files": n, "bytes": total}``.
    """
    selection = [normalize_selection(p) for p in paths] if paths else None
    gen = repo.open_generation(gen_id)
    files = total = 0
    # manifest path of a hard link's first inode -> name it has in this archive
    linkmap: dict[str, str] = {}
    with (
        repo.lock(exclusive=False),
        tarfile.open(
            fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, errors="surrogateescape"
        ) as tar,
    ):
        for item in gen.items():
            try:
                parts = split_item_path(item.get("path"))
            except UnsafePath:
                continue
            if not parts or not selected(parts, selection):
                continue
            name = "/".join(parts)
            kind = item.get("type")
            ti = tarfile.TarInfo(name)
            ti.mode = int(item.get("mode", 0o644)) & 0o7777
            ti.uid, ti.gid = int(item.get("uid", 0)), int(item.get("gid", 0))
            ti.uname, ti.gname = item.get("user") or "", item.get("group") or ""
            mtime_ns = int(item.get("mtime_ns", 0))
            ti.mtime = mtime_ns // 1_000_000_000
            # exact nanoseconds as a decimal string (a float would lose the last digits)
            sec, ns = divmod(mtime_ns, 1_000_000_000)
            pax: dict[str, str] = {"mtime": f"{sec}.{ns:09d}"} if ns else {}
            for k, v in (item.get("xattrs") or {}).items():
                pax["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
            if pax:
                ti.pax_headers = pax
            link = item.get("hardlink")
            if kind == "hardlink" and isinstance(link, str) and link in linkmap:
                ti.type = tarfile.LNKTYPE
                ti.linkname = linkmap[link]
                tar.addfile(ti)
            elif kind in ("file", "hardlink"):
                ti.type = tarfile.REGTYPE
                ti.size = int(item.get("size", 0))
                tar.addfile(ti, ChunkReader(iter_file_data(repo, item)))
                total += ti.size
                linkmap[name] = name
                if kind == "hardlink" and isinstance(link, str):
                    linkmap[link] = name  # its first path is not in this archive
            elif kind in _TYPES:
                ti.type = _TYPES[kind]
                if kind == "symlink":
                    t = item.get("target", "")
                    ti.linkname = os.fsdecode(t) if isinstance(t, bytes) else t
                elif kind in ("chardev", "blockdev"):
                    rdev = int(item.get("rdev", 0))
                    ti.devmajor, ti.devminor = os.major(rdev), os.minor(rdev)
                tar.addfile(ti)
            else:
                continue
            files += 1
            if progress is not None:
                progress.advance(bytes=ti.size, files=1)
    return {"files": files, "bytes": total}
