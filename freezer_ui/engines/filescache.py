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

In memory an old entry stays msgpack-encoded (``bytes``, ~100 B instead of ~600 B as a dozen
Python objects): loading slices the file without decoding the entries, ``lookup`` decodes one
entry and drops it.  New entries (``keep`` passes an old one on unchanged, ``remember`` encodes
one) are not kept in memory at all: they are appended to an anonymous temporary file in the
cache directory as they come, and ``save`` writes the document header followed by that file.
So the memory of a run does not grow with the entries it records.  The file is byte-for-byte
what ``msgpack.packb`` of the document would give.

``atime_ns`` is the access time when the content was read. An unchanged file is recorded with
it, not with its current atime: any reader (another backup tool, a search indexer) moves atimes
without changing anything else, and recording those moves would make the item stream of an
unchanged tree differ, and be stored again, on every run.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import msgpack

FORMAT_VERSION = 2

# msgpack cannot carry lone surrogates (non-UTF-8 file names decoded with surrogateescape);
# round-tripping them through the same error handler keeps such names cacheable.
_UNICODE_ERRORS = "surrogateescape"

Entry = list  # [ino, size, mtime_ns, ctime_ns, chunks, extents, xattrs, atime_ns]


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, unicode_errors=_UNICODE_ERRORS)


def _packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, unicode_errors=_UNICODE_ERRORS)


def _load_entries(data: bytes) -> dict[str, bytes] | None:
    """path -> encoded entry from a cache file's bytes; ``None`` if it is not version 2
    or not a map.  Entries are sliced out of ``data`` (``skip``), not decoded."""
    # Read through a BytesIO (which shares ``data``) in 1 MiB steps: ``feed(data)`` would
    # copy the whole file into the unpacker's buffer.
    u = msgpack.Unpacker(
        io.BytesIO(data),
        read_size=1 << 20,
        raw=False,
        unicode_errors=_UNICODE_ERRORS,
        max_buffer_size=max(len(data), 1 << 20),
    )
    version = None
    entries: dict[str, bytes] = {}
    for _ in range(u.read_map_header()):
        key = u.unpack()
        if key != "entries":
            value = u.unpack()
            if key == "v":
                version = value
            continue
        entries = {}
        for _ in range(u.read_map_header()):  # ValueError if not a map
            path = u.unpack()
            start = u.tell()
            u.skip()
            if isinstance(path, str):
                entries[path] = data[start : u.tell()]
    return entries if version == FORMAT_VERSION else None


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

    def __init__(self, path: Path | None, old: dict[str, bytes] | None = None) -> None:
        self.path = path
        # encoded entries; ``lookup`` removes what it reads (each path is looked up once per
        # run), so the old entries shrink as the run goes
        self.old: dict[str, bytes] = old or {}
        self.new_count = 0
        # new entries, encoded path then entry, in the order they came (see the module doc)
        self._body: Any = None
        self._body_error: OSError | None = None
        self._packer = msgpack.Packer(use_bin_type=True, unicode_errors=_UNICODE_ERRORS)
        self._last: tuple[str, Entry, bytes] | None = None

    def _add(self, path: str, raw: bytes) -> None:
        if self.path is None or self._body_error is not None:
            return  # no cache file, or it cannot be written: nothing to save
        try:
            if self._body is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._body = tempfile.TemporaryFile(dir=self.path.parent)
            self._body.write(self._packer.pack(path))
            self._body.write(raw)
        except OSError as e:
            # A cache that cannot be written must not fail the backup: save() reports it.
            self._body_error = e
            return
        self.new_count += 1

    @classmethod
    def load(cls, path: Path | None) -> FilesCache:
        if path is None:
            return cls(None)
        try:
            with open(path, "rb") as f:
                data = f.read()
            entries = _load_entries(data)
            del data
            return cls(path, entries)
        except (OSError, ValueError, msgpack.UnpackException, msgpack.OutOfData):
            return cls(path)

    def lookup(self, path: str, st: os.stat_result) -> Entry | None:
        """The old entry for ``path`` if its stat fields match ``st``; otherwise ``None``."""
        raw = self.old.pop(path, None)
        if raw is None:
            return None
        try:
            e = _unpack(raw)
        except (ValueError, msgpack.UnpackException, msgpack.OutOfData):
            return None
        if (
            isinstance(e, list)
            and len(e) == 8
            and e[0] == st.st_ino
            and e[1] == st.st_size
            and e[2] == st.st_mtime_ns
            and e[3] == st.st_ctime_ns
        ):
            self._last = (path, e, raw)
            return e
        return None

    def keep(self, path: str, entry: Entry) -> None:
        last = self._last
        if last is not None and last[0] == path and last[1] is entry:
            self._add(path, last[2])  # unchanged: the encoded entry as loaded
        else:
            self._add(path, _packb(entry))
        self._last = None

    def remember(
        self,
        path: str,
        st: os.stat_result,
        chunks: list,
        extents: list | None,
        xattrs: dict | None,
    ) -> None:
        self._add(
            path,
            _packb(
                [
                    st.st_ino,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                    chunks,
                    extents,
                    xattrs,
                    st.st_atime_ns,
                ]
            ),
        )

    def save(self) -> None:
        """Write the new entries atomically (temp file + rename)."""
        if self.path is None:
            return
        if self._body_error is not None:
            raise self._body_error
        self.path.parent.mkdir(parents=True, exist_ok=True)
        packer = self._packer
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # The same bytes as packb({"v": FORMAT_VERSION, "entries": {...}}): the header, then
        # the entries as they were appended.
        try:
            with open(tmp, "wb", buffering=1 << 20) as f:
                f.write(packer.pack_map_header(2))
                f.write(packer.pack("v"))
                f.write(packer.pack(FORMAT_VERSION))
                f.write(packer.pack("entries"))
                f.write(packer.pack_map_header(self.new_count))
                if self._body is not None:
                    self._body.seek(0)
                    shutil.copyfileobj(self._body, f, 1 << 20)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        finally:
            if self._body is not None:
                self._body.close()
                self._body = None

    def stats(self) -> dict[str, Any]:
        return {"old_entries": len(self.old), "new_entries": self.new_count}
