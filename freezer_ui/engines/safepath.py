"""Restore safety: turn manifest paths into writes that can never leave the restore target.

Two rules, enforced here and nowhere else:

1. :func:`split_item_path` accepts only relative paths made of ordinary components (no empty,
   ``.`` or ``..`` component, no NUL, not absolute). A manifest is data from storage; we treat it
   as hostile.
2. :class:`SafeTree` reaches every parent directory with ``openat(O_DIRECTORY | O_NOFOLLOW)``
   relative to the target's own file descriptor, so a symlink planted in the target (by the
   manifest itself or by someone else) is never followed: the open fails and the item is
   rejected. Leaf entries are then created relative to the parent's descriptor, again without
   following symlinks.
"""

from __future__ import annotations

import errno
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A manifest path that could escape the target or is malformed."""


def split_item_path(path: str | bytes) -> tuple[str, ...]:
    """Split a manifest item path into components; ``"."`` (the source root) gives ``()``.

    Raises :class:`UnsafePath` for anything that is not a plain relative path.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not path:
        raise UnsafePath(f"invalid path {path!r}")
    if "\x00" in path:
        raise UnsafePath(f"NUL byte in path {path!r}")
    if path == ".":
        return ()
    if path.startswith("/"):
        raise UnsafePath(f"absolute path {path!r}")
    parts = tuple(path.split("/"))
    for p in parts:
        if p in ("", ".", ".."):
            raise UnsafePath(f"path {path!r} has a {p or 'empty'!r} component")
    return parts


def normalize_selection(path: str) -> tuple[str, ...]:
    """A user-given subset path (``--path``): leading/trailing slashes and ``./`` are allowed."""
    p = path.strip("/")
    while p.startswith("./"):
        p = p[2:]
    if p in ("", "."):
        return ()
    return split_item_path(p)


class SafeTree:
    """Directory descriptors under one restore target, opened without following symlinks."""

    MAX_OPEN = 256

    def __init__(self, target: str, create: bool = True) -> None:
        if create:
            os.makedirs(target, exist_ok=True)
        # The target itself is the user's choice, so following a symlink *to* it is fine.
        self.root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def __enter__(self) -> SafeTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forget(self, parts: tuple[str, ...]) -> None:
        """Drop cached descriptors at or under ``parts`` (after removing or replacing it)."""
        n = len(parts)
        for key in [k for k in self._fds if k[:n] == parts]:
            os.close(self._fds.pop(key))

    def dir_fd(self, parts: tuple[str, ...], create: bool = True) -> int:
        """Descriptor of directory ``parts`` (``()`` is the target), creating missing ones with
        mode 0700 when ``create``. Raises :class:`UnsafePath` if a component exists and is not a
        directory (a symlink included)."""
        if not parts:
            return self.root_fd
        fd = self._fds.get(parts)
        if fd is not None:
            return fd
        parent = self.dir_fd(parts[:-1], create)
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                pass
            fd = self._open_dir(name, parent, parts)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePath(f"{'/'.join(parts)!r} is not a directory (symlink?)") from None
            raise
        if len(self._fds) >= self.MAX_OPEN:
            # Items arrive in tree order, so dropping everything only costs a few re-opens.
            for old in self._fds.values():
                os.close(old)
            self._fds.clear()
        self._fds[parts] = fd
        return fd

    @staticmethod
    def _open_dir(name: str, parent: int, parts: tuple[str, ...]) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePath(f"{'/'.join(parts)!r} is not a directory (symlink?)") from None
            raise

    def lstat(self, parent_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.lstat(name, dir_fd=parent_fd)
        except FileNotFoundError:
            return None

    def remove(self, parts: tuple[str, ...], parent_fd: int, name: str, st: os.stat_result) -> None:
        """Remove an existing entry (a directory recursively, never following symlinks)."""
        import shutil

        if stat.S_ISDIR(st.st_mode):
            self.forget(parts)
            shutil.rmtree(name, dir_fd=parent_fd)
        else:
            os.unlink(name, dir_fd=parent_fd)
