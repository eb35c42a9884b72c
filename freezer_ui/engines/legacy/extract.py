"""Apply GNU tar incremental members to a directory, never writing outside it.

Every path is resolved component by component from an open descriptor of the root with
``O_NOFOLLOW``: a symlink (or a file) standing where a directory is expected stops the member,
so no archive can write "through" a link it planted earlier. Names with ``..`` are skipped,
leading ``/`` is stripped (both as GNU tar does), device nodes are skipped: each with a warning.

Incremental semantics follow ``tar --extract --incremental`` (what upstream restores with): a
dumpdir (``D``) member first performs the renames it records (``R``/``T``, ``X`` naming a
temporary), then removes every entry of that directory the listing no longer names.
Directory modes and times are applied by :meth:`TreeWriter.finish`, deepest first, after the
last level, so a read-only directory does not block writing its contents.

Owners are restored when running as root (names first, ids when a name does not resolve, as GNU
tar does); otherwise one warning says they were not. Extended attributes carried by the archive
(pax ``SCHILY.xattr.*``) are set on files and directories; one that cannot be set is a warning.

A *selection* (``TreeWriter(selection=[...])``) restores only those relative paths: members
outside them are passed over, directories leading to them are created with their recorded
metadata, and deletions, renames and purges act only on what was selected.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from . import acl
from .errors import CorruptArchive, LegacyError
from .tarstream import BLKDEV, CHRDEV, FIFO, HARDLINK, SYMLINK, Member

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Without restoring owners, set-id bits would hand the restoring user's identity to whoever
# runs the file; GNU tar drops them too when it cannot restore ownership.
MODE_MASK = 0o1777
Owner = tuple[int, int] | None  # (uid, gid) to set; -1 leaves one unchanged


class UnsafePath(Exception):
    """Internal: a member that would leave the target or pass through a non-directory."""


@dataclass
class Stats:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    bytes: int = 0
    removed: int = 0
    renamed: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


def split_member_path(name: str) -> list[str] | None:
    """Member name → path components under the root; None if it must be refused.

    ``/abs`` becomes ``abs`` (GNU tar: "Removing leading '/' from member names"); any ``..``
    component is refused outright rather than resolved, as GNU tar does.
    """
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    if any("\0" in p for p in parts):
        return None
    return parts


def parse_selection(paths: Iterable[str]) -> list[list[str]]:
    """Relative paths to restore → component lists; ValueError for "", "/", ".." or absolute."""
    out: list[list[str]] = []
    for p in paths:
        parts = split_member_path(p) if isinstance(p, str) and not p.startswith("/") else None
        if not parts:
            raise ValueError(f"bad path to restore {p!r}: give a relative path inside the backup")
        out.append(parts)
    return out


def _under(parts: list[str], sel: list[str]) -> bool:
    return parts[: len(sel)] == sel


class TreeWriter:
    def __init__(
        self,
        root: str,
        warn: Callable[[str], None] | None = None,
        *,
        owners: bool | None = None,
        selection: list[list[str]] | None = None,
    ) -> None:
        self.root = root
        self.root_fd = os.open(root, DIR_FLAGS)
        self.stats = Stats()
        self._warn_cb = warn
        # "a/b" → (mode, mtime, owner); "" is the root
        self.dir_meta: dict[str, tuple[int, int, Owner]] = {}
        self.source = ""  # the data file being applied, for error messages
        self.owners = os.geteuid() == 0 if owners is None else owners
        self.mode_mask = 0o7777 if self.owners else MODE_MASK
        self._me = (os.geteuid(), os.getegid())
        self._owner_warned = False
        self._ids: dict[tuple[str, str], int] = {}
        self.selection = selection
        self.unrestorable: set[str] = set()  # selected hard links whose target was not
        # selected hard links to an unselected file: (target parts, link member), per level
        self.pending_links: list[tuple[list[str], Member]] = []

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def warn(self, msg: str) -> None:
        self.stats.warnings.append(msg)
        if self._warn_cb:
            self._warn_cb(msg)

    # ---------------------------------------------------------------- path helpers

    def _open_dir(self, parts: list[str], create: bool) -> int:
        """Open root/parts as a directory without following any symlink; caller closes it."""
        fd = os.dup(self.root_fd)
        try:
            for depth, comp in enumerate(parts, 1):
                try:
                    nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    # Parent directories an archive never listed (single-file backups, foreign
                    # archives): created private now, given a plain mode at finish().
                    os.mkdir(comp, 0o700, dir_fd=fd)
                    self.dir_meta.setdefault(
                        "/".join(parts[:depth]), (0o755, int(time.time()), None)
                    )
                    nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafePath(
                            f"{'/'.join(parts)}: {comp!r} is not a directory"
                        ) from None
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _lstat(self, name: str, dir_fd: int) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _remove(self, name: str, dir_fd: int, rel: str) -> None:
        st = self._lstat(name, dir_fd)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            # rmtree with dir_fd uses the fd-based, symlink-safe walk.
            shutil.rmtree(name, dir_fd=dir_fd)
            self._forget_dirs(rel)
        else:
            os.unlink(name, dir_fd=dir_fd)

    def _forget_dirs(self, rel: str) -> None:
        prefix = rel + "/"
        for k in [k for k in self.dir_meta if k == rel or k.startswith(prefix)]:
            del self.dir_meta[k]

    def _parts_or_skip(self, m: Member, name: str, what: str = "member") -> list[str] | None:
        parts = split_member_path(name)
        if parts is None:
            self.stats.skipped += 1
            self.warn(f"{self.source}: skipped {what} {name!r}: path contains '..'")
            return None
        if name.startswith("/"):
            self.warn(f"{self.source}: removed leading '/' from {what} {name!r}")
        return parts

    # ---------------------------------------------------------------- members

    # ---------------------------------------------------------------- selection

    def where(self, parts: list[str]) -> str | None:
        """ "in" (at or under a selected path), "ancestor" (leads to one) or None (outside)."""
        if self.selection is None:
            return "in"
        if any(_under(parts, sel) for sel in self.selection):
            return "in"
        if any(_under(sel, parts) for sel in self.selection):
            return "ancestor"
        return None

    def _next_components(self, parts: list[str]) -> set[str]:
        return {
            sel[len(parts)]
            for sel in self.selection or []
            if len(sel) > len(parts) and _under(sel, parts)
        }

    def prune(self) -> None:
        """Remove what a rename moved outside the selection: keep only the selected paths and
        the directories leading to them."""
        if self.selection is None:
            return
        ancestors = {tuple(sel[:i]) for sel in self.selection for i in range(len(sel))}
        for anc in sorted(ancestors, key=len):
            try:
                fd = self._open_dir(list(anc), create=False)
            except (FileNotFoundError, UnsafePath):
                continue
            try:
                keep = self._next_components(list(anc))
                for name in os.listdir(fd):
                    if name not in keep:
                        self._remove(name, fd, "/".join([*anc, name]))
            finally:
                os.close(fd)

    def resolve_links(self, members: Iterable[tuple[Member, Iterable[bytes]]]) -> None:
        """Second reading of a level for :attr:`pending_links`: each unselected target's data
        is written under the first selected link name, the other names linked to it."""
        pending = self.pending_links
        self.pending_links = []
        want: dict[tuple[str, ...], list[Member]] = {}
        for src, link in pending:
            want.setdefault(tuple(src), []).append(link)
        for m, data in members:
            parts = split_member_path(m.name)
            links = want.pop(tuple(parts), None) if parts and m.is_file else None
            if not links:
                continue
            first, *others = links
            self.apply(replace(m, name=first.name), data)
            for other in others:
                self.apply(replace(other, linkname=first.name), ())
            if not want:
                return
        for links in want.values():
            for link in links:
                self.unrestorable.add("/".join(split_member_path(link.name) or []))
                self.stats.skipped += 1
                self.warn(
                    f"{self.source}: hard link {link.name!r} not restored: its target "
                    f"{link.linkname!r} is not a file of this level"
                )

    def missing_selected(self) -> list[str]:
        out = []
        for sel in self.selection or []:
            if "/".join(sel) in self.unrestorable:
                continue  # already a warning, with the reason
            try:
                fd = self._open_dir(sel[:-1], create=False)
            except (FileNotFoundError, UnsafePath):
                out.append("/".join(sel))
                continue
            try:
                if self._lstat(sel[-1], fd) is None:
                    out.append("/".join(sel))
            finally:
                os.close(fd)
        return out

    # ---------------------------------------------------------------- owners, xattrs

    def _owner(self, m: Member) -> Owner:
        """(uid, gid) to give ``m``: its names when they resolve here, else its ids."""
        uid = self._id("u", m.uname, m.uid)
        gid = self._id("g", m.gname, m.gid)
        if not self.owners:
            if (uid, gid) != self._me and (uid, gid) != (-1, -1) and not self._owner_warned:
                self._owner_warned = True
                self.warn(
                    "owners not restored (not running as root): restored files belong to "
                    "the restoring user"
                )
            return None
        return uid, gid

    def _id(self, kind: str, name: str, fallback: int) -> int:
        if not name:
            return fallback
        key = (kind, name)
        if key not in self._ids:
            try:
                self._ids[key] = (
                    pwd.getpwnam(name).pw_uid if kind == "u" else grp.getgrnam(name).gr_gid
                )
            except KeyError:
                self._ids[key] = fallback
        return self._ids[key]

    def _chown(
        self, m: Member, owner: Owner, fd: int | None = None, name: str = "", dir_fd: int = -1
    ) -> None:
        if owner is None:
            return
        try:
            if fd is not None:
                os.fchown(fd, *owner)
            else:  # symlinks and FIFOs: by name in their directory, never following a link
                os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as e:
            self.warn(f"{self.source}: owner of {m.name!r} not restored: {e}")

    def _xattrs(self, m: Member, fd: int) -> None:
        for key, value in (m.xattrs or {}).items():
            try:
                os.setxattr(fd, key, value)
            except OSError as e:
                self.warn(f"{self.source}: extended attribute {key!r} of {m.name!r} not set: {e}")
        if m.acls is not None:
            self._acls(m, fd)

    def _acls(self, m: Member, fd: int) -> None:
        """The member's POSIX ACLs (pax SCHILY.acl.*, an archive made with --acls). Every such
        member carries its access ACL; a minimal one (the mode bits) removes what the file may
        have inherited from a default ACL or a directory kept from an earlier level. A
        directory without a default ACL record has none."""
        kinds = ("access", "default") if m.is_dir else ("access",)
        for kind in kinds:
            name = acl.XATTRS[kind]
            text = m.acls.get(kind) if m.acls else None
            try:
                value = None if text is None else acl.to_xattr(text)
            except acl.BadACL as e:
                self.warn(f"{self.source}: {kind} ACL of {m.name!r} not set: {e}")
                continue
            try:
                if value is None:
                    os.removexattr(fd, name)
                else:
                    os.setxattr(fd, name, value)
            except OSError as e:
                if value is not None:
                    self.warn(f"{self.source}: {kind} ACL of {m.name!r} not set: {e}")
                # nothing to remove, or a filesystem without ACLs: the mode says it all

    # ---------------------------------------------------------------- members

    def apply(self, m: Member, data: Iterable[bytes]) -> None:
        parts = self._parts_or_skip(m, m.name)
        if parts is None:
            return
        if self.where(parts) is None:
            return  # outside the selection: the caller streams its data past
        # A directory leading to a selected path is applied as usual (its dumpdir then purges
        # only along that path, see _dumpdir); a non-directory there replaces the way to it,
        # exactly as in a full restore, so what lies beyond is then refused the same way.
        try:
            if m.is_dir:
                self._dir(m, parts)
            elif not parts:
                self.stats.skipped += 1
                self.warn(
                    f"{self.source}: skipped non-directory member naming the root: {m.name!r}"
                )
            elif m.is_file:
                self._file(m, parts, data)
            elif m.type == SYMLINK:
                self._symlink(m, parts)
            elif m.type == HARDLINK:
                self._hardlink(m, parts)
            elif m.type == FIFO:
                self._special(m, parts)
            elif m.type in (CHRDEV, BLKDEV):
                self.stats.skipped += 1
                self.warn(f"{self.source}: skipped device node {m.name!r}")
            else:
                # GNU tar extracts unknown types as regular files; we do the same.
                self.warn(
                    f"{self.source}: unknown member type {m.type!r} for {m.name!r}, "
                    "restored as a regular file"
                )
                self._file(m, parts, data)
        except UnsafePath as e:
            self.stats.skipped += 1
            self.warn(f"{self.source}: skipped {m.name!r}: {e}")
        except OSError as e:
            # Disk full, permissions, or a member no filesystem can hold: fail the restore with
            # the member and the data file named (restore() then discards the partial tree).
            raise LegacyError(f"{self.source}: cannot restore {m.name!r}: {e}") from e

    def delete(self, name: str) -> None:
        """Remove ``name`` (a tree, if a directory) if it exists: an rsyncv2 deletion entry.

        A path whose parent is gone or is no longer a directory is already deleted (rsyncv2
        lists every entry of a removed tree, after the entry that replaced the tree)."""
        parts = split_member_path(name)
        if not parts:
            self.stats.skipped += 1
            self.warn(f"{self.source}: skipped deletion of {name!r}")
            return
        if self.where(parts) is None:
            return
        try:
            pfd = self._open_dir(parts[:-1], create=False)
        except (FileNotFoundError, UnsafePath):
            return
        try:
            if self._lstat(parts[-1], pfd) is not None:
                self._remove(parts[-1], pfd, "/".join(parts))
                self.stats.removed += 1
        except OSError as e:
            raise LegacyError(f"{self.source}: cannot remove {name!r}: {e}") from e
        finally:
            os.close(pfd)

    def patch(self, m: Member, pieces: Iterable[tuple[int, Iterable[bytes]]]) -> None:
        """Write ``(offset, data)`` pieces into the existing regular file ``m.name``, then cut
        it to ``m.size`` and set its mode and mtime: an rsyncv2 block delta.

        The caller drains ``pieces`` when this returns early (skipped member)."""
        parts = self._parts_or_skip(m, m.name)
        if not parts:
            if parts == []:
                self.stats.skipped += 1
                self.warn(f"{self.source}: skipped block delta naming the root")
            return
        if self.where(parts) != "in":
            return
        missing = CorruptArchive(
            self.source,
            f"block delta for {m.name!r}, which no earlier level restored "
            "(was an earlier level skipped?)",
        )
        try:
            try:
                pfd = self._open_dir(parts[:-1], create=False)
            except FileNotFoundError:
                raise missing from None
            try:
                try:
                    fd = os.open(parts[-1], os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
                except FileNotFoundError:
                    raise missing from None
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                        raise UnsafePath(f"{m.name!r} is not a regular file") from None
                    raise
                try:
                    if not stat.S_ISREG(os.fstat(fd).st_mode):
                        raise UnsafePath(f"{m.name!r} is not a regular file")
                    written = 0
                    for offset, data in pieces:
                        os.lseek(fd, offset, os.SEEK_SET)
                        for chunk in data:
                            _write_all(fd, chunk)
                            written += len(chunk)
                    os.ftruncate(fd, m.size)
                    self._chown(m, self._owner(m), fd)
                    os.fchmod(fd, m.mode & self.mode_mask)
                    os.utime(fd, (m.mtime, m.mtime))
                finally:
                    os.close(fd)
            finally:
                os.close(pfd)
        except UnsafePath as e:
            self.stats.skipped += 1
            self.warn(f"{self.source}: skipped {m.name!r}: {e}")
            return
        except OSError as e:
            raise LegacyError(f"{self.source}: cannot patch {m.name!r}: {e}") from e
        self.stats.files += 1
        self.stats.bytes += written

    def _dir(self, m: Member, parts: list[str]) -> None:
        rel = "/".join(parts)
        if parts:
            pfd = self._open_dir(parts[:-1], create=True)
            try:
                st = self._lstat(parts[-1], pfd)
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    os.unlink(parts[-1], dir_fd=pfd)  # was a file/symlink at the previous level
                    st = None
                if st is None:
                    os.mkdir(parts[-1], 0o700, dir_fd=pfd)
                    self.stats.dirs += 1
            finally:
                os.close(pfd)
        self.dir_meta[rel] = (m.mode, m.mtime, self._owner(m))
        if m.xattrs or m.acls is not None:
            dfd = self._open_dir(parts, create=False)
            try:
                self._xattrs(m, dfd)
            finally:
                os.close(dfd)
        if m.dumpdir is not None:
            self._dumpdir(m, parts)

    def _dumpdir(self, m: Member, parts: list[str]) -> None:
        temp: list[str] | None = None
        entries = m.dumpdir or []
        i = 0
        while i < len(entries):
            code, name = entries[i]
            if code == "X":
                # Stub for cycles such as a↔b: GNU tar moves one side to a fresh temporary name.
                stub = self._parts_or_skip(m, name, "rename stub")
                if stub:
                    temp = [*stub[:-1], f"{stub[-1]}.{secrets.token_hex(4)}"]
            elif code == "R":
                if i + 1 >= len(entries) or entries[i + 1][0] != "T":
                    raise CorruptArchive(self.source, f"dumpdir of {m.name!r}: 'R' without 'T'")
                src = self._parts_or_skip(m, name, "rename source") if name else temp
                dst_name = entries[i + 1][1]
                dst = self._parts_or_skip(m, dst_name, "rename target") if dst_name else temp
                i += 1
                if src and dst:
                    self._rename(m, src, dst)
            elif code == "T":
                raise CorruptArchive(self.source, f"dumpdir of {m.name!r}: 'T' without 'R'")
            i += 1

        keep = {name for code, name in entries if code in "YND"}
        # In a selection, a directory leading to a selected path purges only along that path.
        only = self._next_components(parts) if self.where(parts) == "ancestor" else None
        dfd = self._open_dir(parts, create=False)
        try:
            for name in os.listdir(dfd):
                if name not in keep and (only is None or name in only):
                    self._remove(name, dfd, "/".join([*parts, name]))
                    self.stats.removed += 1
        finally:
            os.close(dfd)

    def _rename(self, m: Member, src: list[str], dst: list[str]) -> None:
        if not src or not dst:
            return
        if self.selection is not None and not self._exists(src):
            return  # not selected, so never restored: nothing to move
        try:
            sfd = self._open_dir(src[:-1], create=False)
        except FileNotFoundError:
            raise CorruptArchive(
                self.source,
                f"dumpdir of {m.name!r} renames missing directory {'/'.join(src)!r} "
                "(was an earlier level skipped?)",
            ) from None
        try:
            dfd = self._open_dir(dst[:-1], create=True)
            try:
                if self._lstat(src[-1], sfd) is None:
                    raise CorruptArchive(
                        self.source,
                        f"dumpdir of {m.name!r} renames missing directory {'/'.join(src)!r} "
                        "(was an earlier level skipped?)",
                    )
                self._remove(dst[-1], dfd, "/".join(dst))
                os.rename(src[-1], dst[-1], src_dir_fd=sfd, dst_dir_fd=dfd)
                self.stats.renamed += 1
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        old, new = "/".join(src), "/".join(dst)
        for k in [k for k in self.dir_meta if k == old or k.startswith(old + "/")]:
            self.dir_meta[new + k[len(old) :]] = self.dir_meta.pop(k)

    def _exists(self, parts: list[str]) -> bool:
        try:
            fd = self._open_dir(parts[:-1], create=False)
        except (FileNotFoundError, UnsafePath):
            return False
        try:
            return self._lstat(parts[-1], fd) is not None
        finally:
            os.close(fd)

    def _file(self, m: Member, parts: list[str], data: Iterable[bytes]) -> None:
        pfd = self._open_dir(parts[:-1], create=True)
        try:
            self._remove(parts[-1], pfd, "/".join(parts))
            # O_EXCL|O_NOFOLLOW: never open through a symlink, even one raced into place.
            fd = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=pfd,
            )
            try:
                written = 0
                for chunk in data:
                    _write_all(fd, chunk)
                    written += len(chunk)
                self._chown(m, self._owner(m), fd)
                os.fchmod(fd, m.mode & self.mode_mask)  # after chown: chown clears set-id bits
                self._xattrs(m, fd)
                os.utime(fd, (m.mtime, m.mtime))
            finally:
                os.close(fd)
        finally:
            os.close(pfd)
        self.stats.files += 1
        self.stats.bytes += written

    def _symlink(self, m: Member, parts: list[str]) -> None:
        if not m.linkname:
            raise UnsafePath("symlink with an empty target")
        pfd = self._open_dir(parts[:-1], create=True)
        try:
            self._remove(parts[-1], pfd, "/".join(parts))
            # The target is stored verbatim (it may be absolute or climb out): it is only data,
            # we never follow it while restoring.
            os.symlink(m.linkname, parts[-1], dir_fd=pfd)
            self._chown(m, self._owner(m), name=parts[-1], dir_fd=pfd)
            try:
                os.utime(parts[-1], (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
            except OSError:
                pass  # some filesystems cannot time a symlink; not worth failing for
        finally:
            os.close(pfd)
        self.stats.symlinks += 1

    def _hardlink(self, m: Member, parts: list[str]) -> None:
        src = self._parts_or_skip(m, m.linkname, "hard link target")
        if src is None:
            return
        if not src:
            raise UnsafePath(f"hard link to the root {m.linkname!r}")
        if src == parts:
            raise UnsafePath("hard link to itself")
        if self.where(src) != "in":
            # The data went with the other name, which was streamed past: restore() reads this
            # level again for it (resolve_links), rather than fail like `tar -x NAME` does.
            self.pending_links.append((src, m))
            return
        try:
            sfd = self._open_dir(src[:-1], create=False)
        except FileNotFoundError:
            raise CorruptArchive(
                self.source, f"hard link {m.name!r} → {m.linkname!r}: target not restored"
            ) from None
        try:
            st = self._lstat(src[-1], sfd)
            if st is None:
                raise CorruptArchive(
                    self.source, f"hard link {m.name!r} → {m.linkname!r}: target not restored"
                )
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePath(f"hard link to a directory {m.linkname!r}")
            pfd = self._open_dir(parts[:-1], create=True)
            try:
                self._remove(parts[-1], pfd, "/".join(parts))
                # follow_symlinks=False: linking a symlink links the link, never its target.
                os.link(src[-1], parts[-1], src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(pfd)
        finally:
            os.close(sfd)
        self.stats.hardlinks += 1

    def _special(self, m: Member, parts: list[str]) -> None:
        pfd = self._open_dir(parts[:-1], create=True)
        try:
            self._remove(parts[-1], pfd, "/".join(parts))
            os.mkfifo(parts[-1], m.mode & 0o777, dir_fd=pfd)
            self._chown(m, self._owner(m), name=parts[-1], dir_fd=pfd)
        finally:
            os.close(pfd)

    # ---------------------------------------------------------------- end

    def finish(self) -> None:
        """Apply directory modes/times deepest first (writing children bumps a dir's mtime)."""
        for rel in sorted(
            self.dir_meta, key=lambda r: r.count("/") + (1 if r else 0), reverse=True
        ):
            mode, mtime, owner = self.dir_meta[rel]
            try:
                fd = self._open_dir(rel.split("/") if rel else [], create=False)
            except (FileNotFoundError, UnsafePath):
                continue
            try:
                if owner is not None:
                    try:
                        os.fchown(fd, *owner)
                    except OSError as e:
                        self.warn(f"owner of directory {rel or '.'!r} not restored: {e}")
                os.fchmod(fd, mode & self.mode_mask)
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
