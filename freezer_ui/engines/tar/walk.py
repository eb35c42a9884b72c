"""Tree walking and metadata capture for the tar engine.

The walk is the hot path of an unchanged backup: per entry it costs one ``lstat`` (done by
``DirEntry.stat(follow_symlinks=False)``) and a few dict operations. Everything else (xattrs,
readlink, opening the file) happens only for entries that need it.
"""

from __future__ import annotations

import errno
import fnmatch
import grp
import os
import pwd
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

# Errors that mean "this file system or this caller cannot have xattrs here": not worth one
# warning per file, so they are reported once per device.
_XATTR_QUIET = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES)


def encode_path(s: str) -> str | bytes:
    """Manifest form of a path: UTF-8 text when possible, raw bytes for names that are not
    valid UTF-8 (decoded by ``os.fsdecode`` with surrogateescape), so nothing is lost."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return os.fsencode(s)


def decode_path(p: str | bytes) -> str:
    return os.fsdecode(p) if isinstance(p, bytes) else p


class Excluder:
    """fnmatch globs matched against the path relative to the source, the absolute path and
    the base name (so ``*.tmp``, ``cache/*`` and ``/srv/data/tmp`` all work)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        if self.patterns:
            self._re = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns))
        else:
            self._re = None

    def __bool__(self) -> bool:
        return self._re is not None

    def match(self, rel: str, abspath: str, name: str) -> bool:
        m = self._re.match
        return bool(m(name) or m(rel) or m(abspath) or m(abspath.rstrip("/")))


class Owners:
    """uid/gid -> name, memoized (one getpwuid per distinct owner, not per file)."""

    def __init__(self) -> None:
        self._users: dict[int, str | None] = {}
        self._groups: dict[int, str | None] = {}

    def user(self, uid: int) -> str | None:
        try:
            return self._users[uid]
        except KeyError:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = None
            self._users[uid] = name
            return name

    def group(self, gid: int) -> str | None:
        try:
            return self._groups[gid]
        except KeyError:
            try:
                name = grp.getgrgid(gid).gr_name
            except KeyError:
                name = None
            self._groups[gid] = name
            return name


@dataclass
class WalkWarnings:
    messages: list[str] = field(default_factory=list)
    _quiet_devs: set = field(default_factory=set)

    def add(self, msg: str) -> None:
        self.messages.append(msg)

    def xattr_error(self, rel: str, dev: int, e: OSError) -> None:
        if e.errno in _XATTR_QUIET:
            if dev not in self._quiet_devs:
                self._quiet_devs.add(dev)
                self.add(f"{rel}: xattrs not readable here ({e.strerror}); skipped on this device")
        else:
            self.add(f"{rel}: cannot read xattrs: {e.strerror}")


def read_xattrs(
    target: int | str, rel: str, dev: int, warnings: WalkWarnings, follow: bool = True
) -> dict[str, bytes] | None:
    """All readable xattrs of an open fd or (not followed) path; ``None`` when there are none."""
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as e:
        warnings.xattr_error(rel, dev, e)
        return None
    if not names:
        return None
    out: dict[str, bytes] = {}
    for n in names:
        try:
            out[n] = os.getxattr(target, n, follow_symlinks=follow)
        except OSError as e:
            if e.errno != errno.ENODATA:  # removed between list and get
                warnings.xattr_error(rel, dev, e)
    return out or None


def walk(
    root: str,
    excludes: Excluder,
    one_file_system: bool,
    warnings: WalkWarnings,
) -> Iterator[tuple[str, str, os.stat_result]]:
    """Yield ``(relpath, abspath, lstat)`` in sorted pre-order (a directory before its
    contents), starting with ``(".", root, lstat(root))``.

    Unreadable directories and entries that vanish are warnings, not errors. With
    ``one_file_system`` a mount point is yielded (as an empty directory) but not entered.
    """
    root_st = os.stat(root)  # a source given as a symlink to a directory means the directory
    yield ".", root, root_st
    root_dev = root_st.st_dev
    has_excludes = bool(excludes)
    match = excludes.match if has_excludes else None
    by_name = attrgetter("name")
    is_dir = stat.S_ISDIR

    def listing(path: str, rel: str) -> Iterator[os.DirEntry]:
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as e:
            warnings.add(f"{rel}: cannot list directory: {e.strerror}")
            return iter(())
        entries.sort(key=by_name)
        return iter(entries)

    # An explicit stack instead of recursion: trees can be deeper than Python's recursion
    # limit.  The loop body runs once per entry of the tree: it is kept to the few
    # operations each entry needs (the ``for`` resumes a directory's iterator after a
    # subdirectory was walked).
    stack: list[tuple[Iterator[os.DirEntry], str]] = [(listing(root, "."), "")]
    while stack:
        it, prefix = stack[-1]
        for entry in it:
            name = entry.name
            rel = prefix + name
            path = entry.path
            if has_excludes and match(rel, path, name):  # type: ignore[misc]
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    warnings.add(f"{rel}: cannot stat: {e.strerror}")
                continue
            yield rel, path, st
            if is_dir(st.st_mode) and (not one_file_system or st.st_dev == root_dev):
                stack.append((listing(path, rel), rel + "/"))
                break
        else:
            stack.pop()
