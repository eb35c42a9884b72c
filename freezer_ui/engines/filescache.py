"""The files cache: lets an unchanged file cost one ``lstat`` instead of a full read.

An entry maps a path (relative to the backup source) to what the last backup stored for it::

    path -> [inode, size, mtime_ns, ctime_ns, chunks, extents, xattrs, atime_ns]

``chunks`` is the list of ``[chunk_id, size]`` pairs the manifest needs, ``extents`` the data
extents of a sparse file (``None`` when not sparse), ``xattrs`` a dict or ``None``. An entry is
used only if all four stat fields match (ctime catches chmod/chown/xattr changes and writes that
restore mtime) *and* the repository still knows every chunk (after a prune it may not).

The file is one msgpack document written atomically after a committed backup. It holds only the
entries seen by that backup, so deleted files drop out. A missing, corrupt or foreign-version file
is an empty cache: the worst case is a full re-read, never a wrong backup.

``atime_ns`` is the access time when the content was read. An unchanged file is recorded with
it, not with its current atime: any reader (another backup tool, a search indexer) moves atimes
without changing anything else, and recording those moves would make the item stream of an
unchanged tree differ, and be stored again, on every run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import msgpack

FORMAT_VERSION = 2

# msgpack cannot carry lone surrogates (non-UTF-8 file names decoded with surrogateescape);
# round-tripping them through the same error handler keeps such names cacheable.
_UNICODE_ERRORS = "surrogateescape"

Entry = list  # [ino, size, mtime_ns, ctime_ns, chunks, extents, xattrs, atime_ns]


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "freezer-ui"


def cache_path(repo_id: str, source: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the files cache of (repository, absolute source path) lives."""
    root = Path(cache_dir) if cache_dir else default_cache_root()
    digest = hashlib.blake2b(os.fsencode(os.path.abspath(source)), digest_size=16).hexdigest()
    return root / str(repo_id) / digest / "files.msgpack"


class FilesCache:
    """Old entries (loaded) are looked up; new entries (this run) are saved."""

    def __init__(self, path: Path | None, old: dict[str, Entry] | None = None) -> None:
        self.path = path
        self.old: dict[str, Entry] = old or {}
        self.new: dict[str, Entry] = {}

    @classmethod
    def load(cls, path: Path | None) -> FilesCache:
        if path is None:
            return cls(None)
        try:
            with open(path, "rb") as f:
                doc = msgpack.unpackb(f.read(), raw=False, unicode_errors=_UNICODE_ERRORS)
            if not isinstance(doc, dict) or doc.get("v") != FORMAT_VERSION:
                return cls(path)
            entries = doc.get("entries")
            return cls(path, entries if isinstance(entries, dict) else {})
        except (OSError, ValueError, msgpack.UnpackException):
            return cls(path)

    def lookup(self, path: str, st: os.stat_result) -> Entry | None:
        """The old entry for ``path`` if its stat fields match ``st``; otherwise ``None``."""
        e = self.old.get(path)
        if (
            e is not None
            and len(e) == 8
            and e[0] == st.st_ino
            and e[1] == st.st_size
            and e[2] == st.st_mtime_ns
            and e[3] == st.st_ctime_ns
        ):
            return e
        return None

    def keep(self, path: str, entry: Entry) -> None:
        self.new[path] = entry

    def remember(
        self,
        path: str,
        st: os.stat_result,
        chunks: list,
        extents: list | None,
        xattrs: dict | None,
    ) -> None:
        self.new[path] = [
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            chunks,
            extents,
            xattrs,
            st.st_atime_ns,
        ]

    def save(self) -> None:
        """Write the new entries atomically (temp file + rename)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = msgpack.packb(
            {"v": FORMAT_VERSION, "entries": self.new},
            use_bin_type=True,
            unicode_errors=_UNICODE_ERRORS,
        )
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path)

    def stats(self) -> dict[str, Any]:
        return {"old_entries": len(self.old), "new_entries": len(self.new)}
