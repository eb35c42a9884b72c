"""Build file trees with every kind of entry, and compare two trees (content + metadata)."""

from __future__ import annotations

import os
import stat
from typing import Any


def snapshot(root: str, *, atime: bool = True) -> dict[str, dict[str, Any]]:
    """Everything a restore must reproduce, keyed by relative path. Metadata is read before any
    content so reading does not disturb atimes; hard links are compared as groups of paths
    sharing an inode."""
    out: dict[str, dict[str, Any]] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [".", *sorted(dirnames), *sorted(filenames)]:
            if name == "." and dirpath != root:
                continue
            p = os.path.normpath(os.path.join(dirpath, name))
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            d: dict[str, Any] = {
                "fmt": stat.S_IFMT(st.st_mode),
                "mode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
            }
            if not stat.S_ISLNK(st.st_mode):
                d["mtime_ns"] = st.st_mtime_ns
                if atime and not stat.S_ISDIR(st.st_mode):
                    d["atime_ns"] = st.st_atime_ns
                try:
                    d["xattrs"] = {
                        k: os.getxattr(p, k) for k in os.listxattr(p) if k.startswith("user.")
                    }
                except OSError:
                    d["xattrs"] = {}
            if stat.S_ISREG(st.st_mode):
                d["size"] = st.st_size
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
                d["sparse"] = st.st_blocks * 512 < st.st_size
            if stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(p)
            out[rel] = d
    for rel, d in out.items():
        if d["fmt"] == stat.S_IFREG:
            # O_NOATIME: reading must not change the atimes this snapshot compares
            try:
                fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_NOATIME)
            except PermissionError:  # O_NOATIME needs ownership (or root)
                fd = os.open(os.path.join(root, rel), os.O_RDONLY)
            with open(fd, "rb") as f:
                d["data"] = f.read()
    for group in inodes.values():
        for rel in group:
            out[rel]["links"] = tuple(sorted(group))
    return out


def diff(a: dict, b: dict) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            out.append(f"{k}: only in restored")
        elif k not in b:
            out.append(f"{k}: missing from restored")
        else:
            for f in sorted(set(a[k]) | set(b[k])):
                if a[k].get(f) != b[k].get(f):
                    va, vb = a[k].get(f), b[k].get(f)
                    if f == "data":
                        va, vb = f"<{len(va or b'')} bytes>", f"<{len(vb or b'')} bytes>"
                    out.append(f"{k}: {f} {va!r} != {vb!r}")
    return out


def make_sparse(path: str, size: int, pieces: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as f:
        for off, data in pieces:
            f.seek(off)
            f.write(data)
        f.truncate(size)


def build_sample_tree(root: str) -> None:
    """A small tree with one of everything the tar engine handles."""
    os.makedirs(os.path.join(root, "dir/sub/deeper"), exist_ok=True)
    os.makedirs(os.path.join(root, "empty"), exist_ok=True)
    with open(os.path.join(root, "dir/a.txt"), "wb") as f:
        f.write(b"hello world\n")
    with open(os.path.join(root, "dir/sub/big.bin"), "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 17))
    with open(os.path.join(root, "dir/sub/deeper/zero"), "wb"):
        pass
    with open(os.path.join(root, "ünïcødé ✓.txt"), "wb") as f:
        f.write("naïve\n".encode())
    os.link(os.path.join(root, "dir/a.txt"), os.path.join(root, "dir/sub/hardlink-to-a"))
    os.symlink("../a.txt", os.path.join(root, "dir/sub/link-to-a"))
    os.symlink("/nonexistent/target", os.path.join(root, "dangling"))
    os.mkfifo(os.path.join(root, "fifo"))
    make_sparse(
        os.path.join(root, "sparse.img"),
        64 * 1024 * 1024,
        [(0, b"head"), (40 << 20, b"middle" * 1000)],
    )
    os.setxattr(os.path.join(root, "dir/a.txt"), "user.comment", b"kept")
    os.chmod(os.path.join(root, "dir/sub"), 0o750)
    os.chmod(os.path.join(root, "dir/a.txt"), 0o640)
    os.utime(
        os.path.join(root, "dir/a.txt"), ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321)
    )
    os.utime(os.path.join(root, "empty"), ns=(1_400_000_000_000_000_000, 1_400_000_000_000_000_000))
