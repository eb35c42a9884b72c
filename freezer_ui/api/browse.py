"""Browsing the generation behind a backup record: listings, search, versions, downloads.

The panels (generation browser, restore wizard's tree picker) call these ``f(request,
backup_id, ...)`` functions; nothing else in the dashboards opens a repository.  Each call:

1. fetches the record with the project-scoped ``backup_get`` (another project's id raises
   :class:`~freezer_ui.api.exceptions.NotFound` before anything is opened);
2. refuses records that cannot be browsed: upstream Freezer backups, records still
   ``creating`` or in ``error``, records without a generation;
3. opens the repository the record names, refusing a local path outside
   ``FREEZER_UI_ALLOWED_ROOTS`` (a record is data: it must not make the dashboard read an
   arbitrary directory of the web host) and never creating anything;
4. checks the generation's ``labels["project_id"]``: a generation labelled for another project
   is refused (a forged record in freezer-api must not expose another tenant's repository).
   An **unlabelled** generation is accepted in embedded mode only: there, records are written
   by our agents (the panels cannot create backup records), while in remote mode any project
   member with a token can POST a backup record naming any container.

Passphrases come from the record's ``passphrase_ref`` only (a key file name in
``<FREEZER_UI_STATE_DIR>/agent/keys``; ``encrypt_pass_file`` paths in a record are ignored: a
record must not make the web server read a file of its choosing) or ``FREEZER_UI_PASSPHRASE``.

Opened repositories and per-generation directory maps are kept in small per-process LRU caches:
a lazy tree asks for one directory per click.
"""

from __future__ import annotations

import collections
import fnmatch
import hashlib
import inspect
import os
import posixpath
import queue
import threading
from collections.abc import Iterator
from typing import Any

from freezer_ui import conf
from freezer_ui.api import backup_groups
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.exceptions import FreezerAPIError

# Entries a directory map keeps per generation: above this the manifest is streamed per
# request instead (a map of millions of entries would not fit a web worker's memory).
TREE_CACHE_MAX_ITEMS = 200_000
REPO_CACHE_SIZE = 4
TREE_CACHE_SIZE = 4
# Generations file_versions() looks at (newest first): each costs one manifest read.
VERSIONS_MAX = 100
# Bytes handed from the tar writer thread to the response per queue slot, and slots.
TAR_BLOCK = 256 * 1024
TAR_QUEUE_SLOTS = 8

FILE_TYPES = ("file", "hardlink")


# ------------------------------------------------------------------------------- errors
class BrowseError(FreezerAPIError):
    """The generation cannot be browsed; the message says why, for the user."""

    status_code = 409


class NotBrowsable(BrowseError):
    """Upstream Freezer backups, records being created or in error, no generation."""


class Refused(BrowseError):
    """The record points somewhere this project may not read."""

    status_code = 403


class GenerationGone(BrowseError):
    """The record's generation is no longer in the repository (forgotten, pruned)."""

    status_code = 410


class PathNotFound(BrowseError):
    status_code = 404


class BadPath(BrowseError):
    """A path that is absolute, has ``..``/``.``/empty components or a NUL byte."""

    status_code = 400


# ------------------------------------------------------------------------------- paths
def clean_path(path: str | None) -> tuple[str, ...]:
    """A user-given path (``""`` = the root) as components; traversal attempts are refused."""
    if path is None or path == "":
        return ()
    if not isinstance(path, str) or "\x00" in path:
        raise BadPath("invalid path")
    if path.startswith("/"):
        raise BadPath(f"absolute paths are not accepted: {path!r}")
    parts = tuple(path.rstrip("/").split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise BadPath(f"path {path!r} has a {part or 'empty'!r} component")
    return parts


def _item_parts(item: dict[str, Any]) -> tuple[str, ...] | None:
    from freezer_ui.engines.safepath import UnsafePath, split_item_path

    try:
        return split_item_path(item.get("path"))
    except UnsafePath:
        return None  # a hostile manifest path is never shown


def _entry(parts: tuple[str, ...], item: dict[str, Any]) -> dict[str, Any]:
    target = item.get("target")
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    kind = item.get("type") or ""
    return {
        "name": parts[-1] if parts else "",
        "path": "/".join(parts),
        "type": kind,
        "size": int(item.get("size") or 0) if kind in FILE_TYPES else None,
        "mtime": int(item.get("mtime_ns") or 0) / 1e9,
        "mode": int(item.get("mode") or 0),
        "target": target if kind == "symlink" else (item.get("hardlink") or None),
    }


# ------------------------------------------------------------------------------- caches
class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._d.get(key)
            if value is not None:
                self._d.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


_repos = _LRU(REPO_CACHE_SIZE)
_trees = _LRU(TREE_CACHE_SIZE)


def clear_caches() -> None:
    _repos.clear()
    _trees.clear()


# ------------------------------------------------------------------------------- opening
class Opened:
    """A browsable generation: the record, its repository and generation."""

    def __init__(self, record: Any, repo: Any, generation: Any) -> None:
        self.record = record
        self.repo = repo
        self.generation = generation

    @property
    def gen_id(self) -> str:
        return self.generation.id


def repository_url(meta: dict[str, Any]) -> str:
    """Where a record's repository lives: ``repository`` (our agent's) or storage+container."""
    url = str(meta.get("repository") or "").strip()
    if url:
        return url
    container = str(meta.get("container") or "").strip()
    storage = str(meta.get("storage") or "local")
    if not container:
        raise NotBrowsable("the backup record names no repository")
    if "://" in container or storage == "local":
        return container
    return f"{storage}://{container}"


def _local_path(url: str) -> str | None:
    if "://" not in url:
        return url
    if url.startswith("local://"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(url).path)
    return None


def _passphrase(record: Any, project_id: str) -> str | None:
    from freezer_ui import secrets

    meta = record.to_dict().get("backup_metadata") or {}
    # Only the reference by name: see the module docstring.
    ref = {"passphrase_ref": meta.get("passphrase_ref")} if meta.get("passphrase_ref") else {}
    key_dir = os.path.join(conf.get("FREEZER_UI_STATE_DIR"), "agent", "keys")
    kwargs: dict[str, Any] = {"key_dir": key_dir}
    if "project_id" in inspect.signature(secrets.resolve_passphrase).parameters:
        kwargs["project_id"] = project_id
    try:
        return secrets.resolve_passphrase(ref, **kwargs)
    except secrets.SecretError as exc:
        raise Refused(f"the repository passphrase is not available: {exc}") from None


def _open_repository(url: str, passphrase: str | None) -> Any:
    from freezer_ui.repository import Repository, RepositoryError
    from freezer_ui.storage import StorageError
    from freezer_ui.storage.registry import get_storage

    digest = hashlib.sha256((passphrase or "").encode()).hexdigest()
    cached = _repos.get((url, digest))
    if cached is not None:
        return cached
    local = _local_path(url)
    try:
        if local is not None:
            # create=False: a record naming a missing directory must not create it.
            storage = get_storage(url, create=False)
        else:
            storage = get_storage(url)
        repo = Repository.open(storage, passphrase=passphrase)
    except (RepositoryError, StorageError) as exc:
        raise NotBrowsable(f"cannot open the repository: {exc}") from None
    _repos.put((url, digest), repo)
    return repo


def open_backup(request: Any, backup_id: str) -> Opened:
    """The record's generation, after every check of the module docstring."""
    from freezer_ui.repository import GenerationNotFound, RepositoryError

    record = api_freezer.backup_get(request, backup_id)
    if backup_groups.record_origin(record) != backup_groups.ORIGIN_OURS:
        raise NotBrowsable(
            "this backup was written by the upstream Freezer agent: its files cannot be "
            "browsed here (restore it with the restore wizard)"
        )
    if record.status == "creating":
        raise NotBrowsable("this backup is still being created")
    if record.status == "error":
        meta = record.to_dict().get("backup_metadata") or {}
        raise NotBrowsable(f"this backup failed: {meta.get('error') or 'no details'}")
    if not record.generation_id:
        raise NotBrowsable("the backup record names no generation")
    meta = record.to_dict().get("backup_metadata") or {}
    url = repository_url(meta)
    local = _local_path(url)
    if local is not None:
        roots = conf.allowed_roots()
        real = os.path.realpath(local)
        if not (conf.path_allowed(local, roots) and conf.path_allowed(real, roots)):
            raise Refused("the repository is outside the allowed roots of this dashboard")
    project_id = request.user.project_id
    repo = _open_repository(url, _passphrase(record, project_id))
    try:
        generation = repo.open_generation(record.generation_id)
    except GenerationNotFound:
        raise GenerationGone(
            f"generation {record.generation_id} is no longer in the repository "
            "(removed by a retention policy or deleted)"
        ) from None
    except RepositoryError as exc:
        raise NotBrowsable(f"cannot read the generation: {exc}") from None
    label = generation.info.labels.get("project_id")
    if label is not None and label != project_id:
        raise Refused("this generation belongs to another project")
    if label is None and conf.get("FREEZER_UI_API_MODE") != "embedded":
        raise Refused(
            "this generation carries no project label; in remote mode only labelled "
            "generations can be browsed"
        )
    return Opened(record, repo, generation)


# ------------------------------------------------------------------------------- trees
class _Tree:
    """Directory path -> entries of one generation (no chunk lists: they stay in the repo)."""

    def __init__(self) -> None:
        self.children: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self.entries: dict[tuple[str, ...], dict[str, Any]] = {}


def _tree(opened: Opened) -> _Tree | None:
    if opened.generation.item_count > TREE_CACHE_MAX_ITEMS:
        return None
    key = (opened.repo.id, opened.gen_id)
    tree = _trees.get(key)
    if tree is not None:
        return tree
    tree = _Tree()
    for item in opened.generation.items():
        parts = _item_parts(item)
        if parts is None:
            continue
        entry = _entry(parts, item)
        tree.entries[parts] = entry
        if parts:
            tree.children.setdefault(parts[:-1], []).append(entry)
    _trees.put(key, tree)
    return tree


def _iter_entries(opened: Opened) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    tree = _tree(opened)
    if tree is not None:
        yield from tree.entries.items()
        return
    for item in opened.generation.items():
        parts = _item_parts(item)
        if parts is not None:
            yield parts, _entry(parts, item)


def _find_item(generation: Any, parts: tuple[str, ...]) -> dict[str, Any] | None:
    for item in generation.items():
        if _item_parts(item) == parts:
            return item
    return None


def _sorted_dir(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Directories first, then by name: what file managers do.
    return sorted(entries, key=lambda e: (e["type"] != "dir", e["name"]))


# ------------------------------------------------------------------------------- API
def list_dir(
    request: Any, backup_id: str, path: str = "", *, offset: int = 0, limit: int = 500
) -> tuple[list[dict[str, Any]], bool]:
    """The entries of one directory (``""`` = the root), one page, and whether more follow.

    Entries: ``{name, path, type, size, mtime, mode, target}`` (``size`` for files only,
    ``mtime`` in seconds since the epoch, ``target`` of a symlink or a hard link).
    """
    parts = clean_path(path)
    opened = open_backup(request, backup_id)
    offset, limit = max(0, int(offset)), max(1, int(limit))
    tree = _tree(opened)
    if tree is not None:
        entry = tree.entries.get(parts)
        children = tree.children.get(parts, [])
    else:
        entry = None
        children = []
        for item_parts, item_entry in _iter_entries(opened):
            if item_parts == parts:
                entry = item_entry
            elif item_parts[:-1] == parts and len(item_parts) == len(parts) + 1:
                children.append(item_entry)
    if entry is None:
        raise PathNotFound(f"no such directory in this generation: {'/'.join(parts)}")
    if entry["type"] != "dir":
        raise PathNotFound(f"not a directory: {'/'.join(parts)}")
    ordered = _sorted_dir(children)
    page = ordered[offset : offset + limit]
    return page, offset + limit < len(ordered)


def search(request: Any, backup_id: str, pattern: str, limit: int = 200) -> list[dict[str, Any]]:
    """Entries whose name matches ``pattern``: a glob (``*.conf``) when it has ``*?[``, else a
    case-insensitive substring.  At most ``limit`` results, in manifest order."""
    pattern = (pattern or "").strip()
    if not pattern:
        return []
    opened = open_backup(request, backup_id)
    glob = any(c in pattern for c in "*?[")
    needle = pattern.lower()
    out = []
    for parts, entry in _iter_entries(opened):
        if not parts:
            continue
        name = parts[-1].lower()
        hit = fnmatch.fnmatchcase(name, needle) if glob else needle in name
        if hit:
            out.append(entry)
            if len(out) >= max(1, int(limit)):
                break
    return out


def file_versions(request: Any, backup_id: str, path: str) -> list[dict[str, Any]]:
    """``path`` in the generations of the same backup group, newest first:
    ``{generation_id, backup_id, time, present, type, size, mtime, changed}``.

    The generations are those of the group's records (same backup name, host, engine, storage,
    origin; ``backup_groups``), newest ``VERSIONS_MAX`` first, read from the repository that
    was checked for ``backup_id``: a record naming a generation that repository does not hold
    (another repository, forgotten) is skipped, and so is a generation labelled for another
    project (or unlabelled, in remote mode), so this never reads more than ``open_backup``
    allows.  ``changed`` compares with the next older generation that has the path (content =
    chunk ids, plus size and mtime); the oldest version counts as changed.
    """
    from freezer_ui.repository import GenerationNotFound, RepositoryError

    parts = clean_path(path)
    if not parts:
        raise BadPath("give a file path")
    opened = open_backup(request, backup_id)
    project_id = request.user.project_id
    embedded = conf.get("FREEZER_UI_API_MODE") == "embedded"
    records = backup_groups.backup_group_generations(request, opened.record)
    candidates = sorted(
        (
            (gen_id, record)
            for gen_id, record in records.items()
            if record.status == "available" or gen_id == opened.gen_id
        ),
        key=lambda pair: pair[1].time_stamp,
        reverse=True,
    )[:VERSIONS_MAX]
    versions = []
    for gen_id, record in reversed(candidates):  # oldest first, so "changed" can look back
        try:
            generation = opened.repo.open_generation(gen_id)
        except (GenerationNotFound, RepositoryError):
            continue
        label = generation.info.labels.get("project_id")
        if label != project_id and not (label is None and embedded):
            continue
        item = _find_item(generation, parts)
        versions.append(
            {
                "generation_id": gen_id,
                "backup_id": record.id,
                "time": generation.info.time.timestamp(),
                "present": item is not None,
                "_item": item,
            }
        )
    previous = None
    for v in versions:
        item = v.pop("_item")
        if item is None:
            v.update(type=None, size=None, mtime=None, changed=previous is not None)
            previous = None
            continue
        entry = _entry(parts, item)
        signature = (item.get("type"), entry["size"], item.get("mtime_ns"), _content(item))
        v.update(
            type=entry["type"],
            size=entry["size"],
            mtime=entry["mtime"],
            changed=previous is None or signature != previous,
        )
        previous = signature
    versions.reverse()
    return versions


def _content(item: dict[str, Any]) -> tuple:
    chunks = item.get("chunks") or []
    ids = tuple(bytes(c[0]).hex() if isinstance(c[0], bytes) else str(c[0]) for c in chunks)
    return ids, str(item.get("target") or "")


def open_file(request: Any, backup_id: str, path: str) -> tuple[int, Iterator[bytes]]:
    """``(size, chunks)`` of one regular file; every chunk is verified against its id as it is
    read (``CorruptData`` mid-stream if the repository was damaged)."""
    from freezer_ui.engines.tar.restore import iter_file_data

    parts = clean_path(path)
    if not parts:
        raise BadPath("give a file path")
    opened = open_backup(request, backup_id)
    item = _find_item(opened.generation, parts)
    if item is None:
        raise PathNotFound(f"no such file in this generation: {'/'.join(parts)}")
    if item.get("type") not in FILE_TYPES:
        raise PathNotFound(f"not a regular file: {'/'.join(parts)}")
    return int(item.get("size") or 0), iter_file_data(opened.repo, item)


def tar_stream(request: Any, backup_id: str, path: str | None = None) -> Iterator[bytes]:
    """The generation (or the directory/file ``path``) as a PAX tar, produced while it is
    read: a writer thread feeds a queue of at most ``TAR_QUEUE_SLOTS`` blocks, so memory stays
    bounded and nothing touches the disk.  Everything is checked before the first byte, so a
    bad request fails with an error rather than a truncated archive."""
    from freezer_ui.engines.tar import TarEngine

    parts = clean_path(path)
    opened = open_backup(request, backup_id)
    if parts:
        tree = _tree(opened)
        known = parts in tree.entries if tree is not None else None
        if known is None:
            known = _find_item(opened.generation, parts) is not None
        if not known:
            raise PathNotFound(f"no such path in this generation: {'/'.join(parts)}")
    paths = ["/".join(parts)] if parts else None
    return _threaded_writer(
        lambda out: TarEngine().export_tar(opened.repo, opened.gen_id, out, paths=paths)
    )


class _Closed(Exception):
    """The consumer went away (the browser cancelled the download)."""


class _QueueWriter:
    def __init__(self, q: queue.Queue, stop: threading.Event) -> None:
        self._q = q
        self._stop = stop
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        if self._stop.is_set():
            raise _Closed()
        self._buf += data
        while len(self._buf) >= TAR_BLOCK:
            self._put(bytes(self._buf[:TAR_BLOCK]))
            del self._buf[:TAR_BLOCK]
        return len(data)

    def flush(self) -> None:
        pass

    def _put(self, block: bytes) -> None:
        while True:
            if self._stop.is_set():
                raise _Closed()
            try:
                self._q.put(block, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()


_DONE = object()


def _threaded_writer(produce: Any) -> Iterator[bytes]:
    q: queue.Queue = queue.Queue(maxsize=TAR_QUEUE_SLOTS)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        writer = _QueueWriter(q, stop)
        try:
            produce(writer)
            writer.close()
        except _Closed:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            failure.append(exc)
        while not stop.is_set():
            try:
                q.put(_DONE, timeout=0.5)
                return
            except queue.Full:
                continue

    def consume() -> Iterator[bytes]:
        thread = threading.Thread(target=run, name="freezer-ui-tar", daemon=True)
        thread.start()
        try:
            while True:
                block = q.get()
                if block is _DONE:
                    break
                yield block
            if failure:
                raise failure[0]
        finally:
            stop.set()

    return consume()


def safe_filename(name: str, default: str = "download") -> str:
    """A file name for ``Content-Disposition``: the last path component, printable ASCII only,
    no quotes or separators (a name from a backup must not forge header parameters)."""
    base = posixpath.basename(name or "") or default
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-+") else "_" for c in base)
    cleaned = cleaned.strip("._") or default
    return cleaned[:150]
