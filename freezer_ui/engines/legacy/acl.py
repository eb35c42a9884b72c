"""POSIX ACLs of pax ``SCHILY.acl.access`` / ``SCHILY.acl.default`` records, as the kernel's
``system.posix_acl_access`` / ``system.posix_acl_default`` extended attributes.

The upstream agent never asks tar for ACLs, but GNU tar reads ``TAR_OPTIONS`` from the
environment the agent hands it: with ``--acls --format=posix`` there, every member carries
its ACL as text (``acl_to_text``: one ``tag:qualifier:perms`` entry per line, users and groups
by name). We set them through the xattrs (no libacl needed): version 2, then one
``(tag u16, perm u16, id u32)`` per entry, little-endian, in the kernel's order.
"""

from __future__ import annotations

import grp
import pwd
import struct
from collections.abc import Callable

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
XATTRS = {"access": ACCESS, "default": DEFAULT}

USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED_ID = 0xFFFFFFFF
_TAGS = {"user": (USER_OBJ, USER), "u": (USER_OBJ, USER), "group": (GROUP_OBJ, GROUP),
         "g": (GROUP_OBJ, GROUP), "mask": (MASK, MASK), "m": (MASK, MASK),
         "other": (OTHER, OTHER), "o": (OTHER, OTHER)}  # fmt: skip


class BadACL(ValueError):
    """An ACL text that cannot be set here (malformed, or naming an unknown user/group)."""


def _user(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise BadACL(f"unknown user {name!r}") from None


def _group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise BadACL(f"unknown group {name!r}") from None


def _perm(text: str) -> int:
    if len(text) != 3 or any(c not in f"{r}-" for c, r in zip(text, "rwx", strict=True)):
        raise BadACL(f"bad permissions {text!r}")
    return sum(bit for c, bit in zip(text, (4, 2, 1), strict=True) if c != "-")


def to_xattr(
    text: str,
    user: Callable[[str], int] = _user,
    group: Callable[[str], int] = _group,
) -> bytes | None:
    """The xattr value for an ACL text; None for a minimal ACL (user/group/other only: the same
    as the mode bits, which the restore sets anyway; the kernel would store nothing)."""
    entries: list[tuple[int, int, int]] = []
    for raw in text.replace(",", "\n").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(":")
        # star's form appends the numeric id ("user:alice:rw-:1000"): use it over the name
        if len(parts) not in (3, 4) or parts[0] not in _TAGS:
            raise BadACL(f"bad ACL entry {line!r}")
        tag_obj, tag_named = _TAGS[parts[0]]
        qualifier = parts[1]
        if not qualifier or tag_obj in (MASK, OTHER):
            if qualifier:
                raise BadACL(f"bad ACL entry {line!r}")
            entries.append((tag_obj, _perm(parts[2]), UNDEFINED_ID))
            continue
        if len(parts) == 4 and parts[3].isdigit():
            ident = int(parts[3])
        else:
            ident = (user if tag_named == USER else group)(qualifier)
        entries.append((tag_named, _perm(parts[2]), ident))
    tags = [t for t, _, _ in entries]
    for needed in (USER_OBJ, GROUP_OBJ, OTHER):
        if tags.count(needed) != 1:
            raise BadACL(f"ACL without exactly one {needed:#x} entry: {text!r:.200}")
    named = [e for e in entries if e[0] in (USER, GROUP)]
    if named and MASK not in tags:
        raise BadACL(f"ACL with named entries and no mask: {text!r:.200}")
    if len({(t, i) for t, _, i in named}) != len(named):
        raise BadACL(f"ACL names one user or group twice: {text!r:.200}")
    if not named and MASK not in tags:
        return None
    entries.sort(key=lambda e: (e[0], e[2]))
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
