"""The repository: open/init, chunk ids, reading chunks and generations (docs/format.md).

Writers live in ``writer.py``; verify, forget and prune in ``maintenance.py``.  This class
is their shared state: the storage, the keys (as an :class:`Envelope`) and the merged
in-memory chunk index.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import blake3
import msgpack  # type: ignore[import-untyped]

from freezer_ui.progress import Progress
from freezer_ui.repository import chunker as _chunker
from freezer_ui.repository._malloc import malloc_trim, tune_malloc
from freezer_ui.repository.chunker import ITEM_CHUNKER, ChunkerParams
from freezer_ui.repository.crypto import (
    BLOB_CHUNK,
    DEFAULT_SCRYPT_N,
    ENCRYPTIONS,
    Envelope,
    KeyMaterial,
    dump_checked,
    load_checked,
    make_key_file,
    open_key_file,
)
from freezer_ui.repository.errors import (
    CorruptData,
    GenerationNotFound,
    MissingChunk,
    RepositoryError,
    RepositoryExists,
    RepositoryNotFound,
    UnsupportedFormat,
    WrongPassphrase,
)
from freezer_ui.repository.format import (
    CONFIG_KEY,
    FORMAT_VERSION,
    ID_LEN,
    INDEX_PREFIX,
    KEYS_PREFIX,
    MANIFESTS_PREFIX,
    MAX_CHUNK_SIZE,
    PACK_FOOTER_LEN,
    PACK_HEADER_LEN,
    PACKS_PREFIX,
    PackEntry,
    check_pack_header,
    index_pack_ids,
    iter_index,
    manifest_key,
    pack_key,
    parse_footer,
    parse_manifest,
    parse_obj_key,
    parse_pack_key,
    parse_trailer,
    valid_generation_id,
)
from freezer_ui.repository.index_cache import (
    IndexCacheError,
    MappedIndex,
    build_regions,
    merge_regions,
    pack_location,
    write_cache,
)
from freezer_ui.repository.locks import Lock
from freezer_ui.storage import ObjectExists, ObjectNotFound, Storage, StorageError

if TYPE_CHECKING:
    from freezer_ui.repository.maintenance import PruneStats, RetentionPolicy, VerifyReport
    from freezer_ui.repository.writer import Writer

_log = logging.getLogger(__name__)

CONFIG_MAGIC = b"FZUICONF"
INDEX_CACHE_NAME = "chunk-index.v1"
DEFAULT_PACK_SIZE = 32 << 20
DEFAULT_KEY_NAME = "default"


class ChunkRef(NamedTuple):
    """A stored chunk: its id and plaintext size.  Packs as ``[id, size]`` in msgpack."""

    id: bytes
    size: int


@dataclass(frozen=True)
class GenerationInfo:
    """Summary of one generation, from its manifest header."""

    id: str
    time: datetime
    hostname: str
    backup_name: str
    engine: str
    source: str
    parent: str | None
    stats: dict[str, Any]
    header: dict[str, Any] = field(repr=False)

    @property
    def labels(self) -> dict[str, str]:
        """The ``labels`` the engine stored in the header (``{}`` when none)."""
        labels = self.header.get("labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    @classmethod
    def from_header(cls, gen_id: str, header: dict[str, Any]) -> GenerationInfo:
        t = header.get("time")
        ts = float(t) if isinstance(t, int | float) else 0.0
        stats = header.get("stats")
        parent = header.get("parent")
        return cls(
            id=gen_id,
            time=datetime.fromtimestamp(ts, tz=timezone.utc),
            hostname=str(header.get("hostname", "")),
            backup_name=str(header.get("backup_name", "")),
            engine=str(header.get("engine", "")),
            source=str(header.get("source", "")),
            parent=None if parent is None else str(parent),
            stats=stats if isinstance(stats, dict) else {},
            header=header,
        )


_ENTRY = struct.Struct(f"<{ID_LEN}sQQQ")  # chunk id, offset, length, size
_M32 = (1 << 32) - 1
_M40 = (1 << 40) - 1


class _Locations(Mapping[bytes, tuple[bytes, int, int, int]]):
    """chunk id -> ``(pack_id, offset, length, size)``, stored as one int per chunk (pack
    number, offset, length and size bit-packed) instead of a tuple of four objects: the
    index of a large repository stays ~100 B per chunk plus the id."""

    def __init__(self) -> None:
        # an int, or the tuple itself for values too large to bit-pack (only a damaged or
        # foreign index has those; they are still served as stored)
        self._d: dict[bytes, Any] = {}
        self._pack_ids: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}

    def _encode(self, pack_id: bytes, offset: int, length: int, size: int) -> Any:
        if not (0 <= offset <= _M40 and 0 <= length <= _M32 and 0 <= size <= _M32):
            return (pack_id, offset, length, size)
        no = self._pack_no.get(pack_id)
        if no is None:
            no = self._pack_no[pack_id] = len(self._pack_ids)
            self._pack_ids.append(pack_id)
        return (((no << 40 | offset) << 32 | length) << 32) | size

    def _decode(self, v: Any) -> tuple[bytes, int, int, int]:
        if type(v) is tuple:
            return v
        return (self._pack_ids[v >> 104], (v >> 64) & _M40, (v >> 32) & _M32, v & _M32)

    def setdefault_location(
        self, chunk_id: bytes, pack_id: bytes, offset: int, length: int, size: int
    ) -> None:
        if chunk_id not in self._d:
            self._d[chunk_id] = self._encode(pack_id, offset, length, size)

    def add_entries(self, pack_id: bytes, entries: Iterable[PackEntry]) -> None:
        """``setdefault_location`` for every entry of one pack (the loop of an index load,
        kept free of per-entry calls)."""
        d = self._d
        no = self._pack_no.get(pack_id)
        for cid, offset, length, size in entries:
            if cid in d:
                continue
            if 0 <= offset <= _M40 and 0 <= length <= _M32 and 0 <= size <= _M32:
                if no is None:
                    no = self._pack_no[pack_id] = len(self._pack_ids)
                    self._pack_ids.append(pack_id)
                d[cid] = (((no << 40 | offset) << 32 | length) << 32) | size
            else:
                d[cid] = (pack_id, offset, length, size)

    def __getitem__(self, chunk_id: bytes) -> tuple[bytes, int, int, int]:
        return self._decode(self._d[chunk_id])

    def get(self, chunk_id: bytes, default: Any = None) -> Any:
        v = self._d.get(chunk_id)
        return default if v is None else self._decode(v)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._d

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


class _PackEntries(Mapping[bytes, list[PackEntry]]):
    """pack id -> its entries, kept struct-packed (56 B per entry); decoded on access."""

    def __init__(self) -> None:
        # packed entries, or a plain list when a value does not fit the struct
        self._d: dict[bytes, bytes | list[PackEntry]] = {}

    def extend(self, pack_id: bytes, entries: list[PackEntry]) -> None:
        old = self._d.get(pack_id, b"")
        if isinstance(old, bytes):
            try:
                raw = b"".join([_ENTRY.pack(*e) for e in entries])
                self._d[pack_id] = old + raw
                return
            except struct.error:
                pass
        self._d[pack_id] = self._decode(old) + list(entries)

    @staticmethod
    def _decode(v: bytes | list[PackEntry]) -> list[PackEntry]:
        if isinstance(v, list):
            return list(v)
        return [PackEntry(*t) for t in _ENTRY.iter_unpack(v)]

    def __getitem__(self, pack_id: bytes) -> list[PackEntry]:
        return self._decode(self._d[pack_id])

    def __contains__(self, pack_id: object) -> bool:
        return pack_id in self._d

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


# Chunk ids found in an index cache that are remembered (per generation of two) so that
# asking again soon costs a set lookup: more than a backup's window of items in flight.
_RECENT = 4096


class _CachedLocations(Mapping[bytes, tuple[bytes, int, int, int]]):
    """``_Locations`` over a memory-mapped index cache: the cached chunks are searched in
    the file, chunks added since (new index objects, this session's packs) live in a small
    in-memory overlay.  First location wins, as in ``_Locations``: the cache holds the older
    index objects, so it is asked first."""

    def __init__(self, base: MappedIndex) -> None:
        self.base = base
        self.overlay = _Locations()
        self._overlay_d = self.overlay._d
        self._ids = base._ids
        self._fan = base._fan
        self._recent: set[bytes] = set()
        self._older: set[bytes] = set()

    def add_entries(self, pack_id: bytes, entries: Iterable[PackEntry]) -> None:
        if self.base.n:  # (a first backup's cache is empty: nothing to search)
            find = self.base.find
            entries = [e for e in entries if find(e[0]) < 0]
        self.overlay.add_entries(pack_id, entries)

    def __getitem__(self, chunk_id: bytes) -> tuple[bytes, int, int, int]:
        i = self.base.find(chunk_id)
        return self.base.location(i) if i >= 0 else self.overlay[chunk_id]

    def get(self, chunk_id: bytes, default: Any = None) -> Any:
        i = self.base.find(chunk_id)
        return self.base.location(i) if i >= 0 else self.overlay.get(chunk_id, default)

    def __contains__(self, chunk_id: object) -> bool:
        # The hot call of a backup (``Writer.known``): MappedIndex.find inlined, a frame
        # less per call.  A backup asks twice for each chunk of an unchanged file (while
        # walking, then when committing the item, a window later): the ids found recently
        # are kept in two small generations of sets, so the second ask is a set lookup.
        # Safe: nothing leaves the index while a writer holds its lock.
        if chunk_id in self._recent or chunk_id in self._older or chunk_id in self._overlay_d:
            return True
        if type(chunk_id) is not bytes or len(chunk_id) != ID_LEN:
            return False
        fan = self._fan
        b = (chunk_id[0] << 8) | chunk_id[1]
        end = ID_LEN * fan[b + 1]
        ids = self._ids
        pos = ids.find(chunk_id, ID_LEN * fan[b], end)
        while pos >= 0 and pos % ID_LEN:  # a match must start on a record boundary
            pos = ids.find(chunk_id, pos + 1, end)
        if pos < 0:
            return False
        recent = self._recent
        recent.add(chunk_id)
        if len(recent) >= _RECENT:
            self._older, self._recent = recent, set()
        return True

    def __iter__(self) -> Iterator[bytes]:
        yield from self.base.iter_ids()
        yield from self.overlay

    def __len__(self) -> int:
        return self.base.n + len(self.overlay)


class _CachedPackEntries(Mapping[bytes, list[PackEntry]]):
    """``_PackEntries`` over a memory-mapped index cache.  Membership is a set lookup; the
    entries of a cached pack are regrouped from the file on first access (one pass: only
    maintenance asks for them, backups do not)."""

    def __init__(self, base: MappedIndex) -> None:
        self.base = base
        self.overlay = _PackEntries()
        self._grouped: dict[bytes, list[PackEntry]] | None = None

    def extend(self, pack_id: bytes, entries: list[PackEntry]) -> None:
        self.overlay.extend(pack_id, entries)

    def _group(self) -> dict[bytes, list[PackEntry]]:
        if self._grouped is None:
            grouped: dict[bytes, list[PackEntry]] = {}
            pack_ids = self.base.pack_ids
            for cid, no, offset, length, size in self.base.entries():
                grouped.setdefault(pack_ids[no], []).append(PackEntry(cid, offset, length, size))
            for entries in grouped.values():
                entries.sort(key=lambda e: e.offset)
            self._grouped = grouped
        return self._grouped

    def __getitem__(self, pack_id: bytes) -> list[PackEntry]:
        if pack_id in self.base.pack_set:
            extra = self.overlay[pack_id] if pack_id in self.overlay else []
            return list(self._group().get(pack_id, [])) + extra
        return self.overlay[pack_id]

    def __contains__(self, pack_id: object) -> bool:
        return pack_id in self.base.pack_set or pack_id in self.overlay

    def __iter__(self) -> Iterator[bytes]:
        yield from self.base.pack_ids
        for pid in self.overlay:
            if pid not in self.base.pack_set:
                yield pid

    def __len__(self) -> int:
        return len(self.base.pack_set | set(self.overlay))


class ChunkIndex:
    """chunk id -> location, merged from every index object (first location wins).

    ``by_chunk`` and ``packs`` are read-only mappings with compact storage; change them
    only through :meth:`add_pack`.  With ``cached`` (a validated local index cache, see
    ``index_cache.py``) they search that file and hold only what was added on top of it.
    """

    def __init__(self, cached: MappedIndex | None = None) -> None:
        self.cached = cached
        self.by_chunk: Any
        self.packs: Any
        if cached is None:
            self.by_chunk = _Locations()
            self.packs = _PackEntries()
        else:
            self.by_chunk = _CachedLocations(cached)
            self.packs = _CachedPackEntries(cached)
        # packs on top of the cache that some loaded index object lists (the others were
        # added by this session and are only indexed once its index object is written)
        self.indexed_overlay: set[bytes] = set()
        self.index_ids: list[bytes] = []
        # Every pack in storage when the index was loaded (id -> size), and the packs index
        # objects list but storage no longer has (lost or removed by a crashed prune).
        self.pack_sizes: dict[bytes, int] = {}
        self.missing_packs: set[bytes] = set()

    def add_pack(self, pack_id: bytes, entries: list[PackEntry]) -> None:
        self.packs.extend(pack_id, entries)
        self.by_chunk.add_entries(pack_id, entries)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self.by_chunk

    def __len__(self) -> int:
        return len(self.by_chunk)


class Generation:
    """One generation: its header and its item stream (read lazily)."""

    def __init__(
        self,
        repo: Repository,
        gen_id: str,
        header: dict[str, Any],
        item_chunks: list[tuple[bytes, int]],
        item_count: int,
    ) -> None:
        self.repo = repo
        self.id = gen_id
        self.header = header
        self.item_chunks = item_chunks
        self.item_count = item_count
        self.info = GenerationInfo.from_header(gen_id, header)

    def items(self) -> Iterator[dict[str, Any]]:
        """Yield the items in the order they were committed (streams chunk by chunk)."""
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=2 * MAX_CHUNK_SIZE)
        where = manifest_key(self.id)
        for data in self.repo.read_chunks(cid for cid, _ in self.item_chunks):
            try:
                unpacker.feed(data)
                for obj in unpacker:
                    if not isinstance(obj, dict):
                        raise CorruptData("item is not a map", key=where)
                    yield obj
            except CorruptData:
                raise
            except Exception as exc:  # msgpack's many error types
                raise CorruptData(
                    f"undecodable item stream: {type(exc).__name__}", key=where
                ) from None
        if unpacker.tell() != sum(size for _, size in self.item_chunks):
            raise CorruptData("item stream ends inside an item", key=where)


class Repository:
    """A deduplicating, optionally encrypted backup repository in a :class:`Storage`."""

    def __init__(self, storage: Storage, config: dict[str, Any], keys: KeyMaterial) -> None:
        tune_malloc()
        self.storage = storage
        self._config = config
        self.id: str = bytes(config["id"]).hex()
        self.format_version: int = int(config["version"])
        self.encryption: str = str(config["encryption"])
        self.encrypted = self.encryption != "none"
        self.chunker_params = ChunkerParams.from_doc(config["chunker"])
        self.item_chunker_params = ChunkerParams.from_doc(config["item_chunker"])
        self.pack_size = int(config["pack_size"])
        self.keys = keys
        self.envelope = Envelope(keys, level=int(config["compression"]["level"]))
        self.lock_timeout = 30.0
        self._index: ChunkIndex | None = None
        self._index_mutex = threading.Lock()
        self._index_cache_file: Path | None = None
        self.index_cache_warnings: list[str] = []

    # --- creation and opening -------------------------------------------------------------
    @classmethod
    def init(
        cls,
        storage: Storage,
        passphrase: str | None = None,
        encryption: str | None = None,
        *,
        chunker: ChunkerParams | None = None,
        pack_size: int = DEFAULT_PACK_SIZE,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> Repository:
        """Create a repository.  ``encryption`` defaults to AES-256-GCM when a passphrase
        is given, else ``"none"``.  The config object is written last: it is what makes
        the storage a repository, so a crash during init leaves no half repository."""
        if encryption is None:
            encryption = "aes-256-gcm" if passphrase else "none"
        if encryption not in ENCRYPTIONS:
            raise RepositoryError(
                f"unknown encryption {encryption!r}; known: {', '.join(ENCRYPTIONS)}"
            )
        if encryption != "none" and not passphrase:
            raise RepositoryError(f"encryption {encryption} needs a passphrase")
        if storage.exists(CONFIG_KEY):
            raise RepositoryExists(f"{storage.url} already holds a repository")
        repo_id = os.urandom(16)
        if chunker is None:
            chunker = ChunkerParams(seed=int.from_bytes(os.urandom(4), "little"))
        keys = KeyMaterial(
            id_key=os.urandom(32), enc_key=os.urandom(32) if encryption != "none" else None
        )
        config: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "id": repo_id,
            "encryption": encryption,
            "chunker": chunker.to_doc(),
            "item_chunker": ITEM_CHUNKER.to_doc(),
            "compression": {"algorithm": "zstd", "level": 3},
            "pack_size": pack_size,
        }
        if encryption == "none":
            # Still a keyed hash: ids then do not match other repositories' ids for the
            # same data, and the code path is the same as for encrypted repositories.
            config["id_key"] = keys.id_key
        else:
            assert passphrase is not None
            storage.put(
                KEYS_PREFIX + DEFAULT_KEY_NAME,
                [make_key_file(passphrase, repo_id, keys, scrypt_n=scrypt_n)],
            )
        try:
            storage.put(CONFIG_KEY, [dump_checked(CONFIG_MAGIC, FORMAT_VERSION, config)])
        except ObjectExists:
            raise RepositoryExists(f"{storage.url} already holds a repository") from None
        return cls(storage, config, keys)

    @classmethod
    def open(cls, storage: Storage, passphrase: str | None = None) -> Repository:
        """Open a repository.  Only ``config`` and ``keys/*`` are read before the passphrase
        is checked, so a wrong passphrase fails fast with :class:`WrongPassphrase`."""
        try:
            raw = storage.get_bytes(CONFIG_KEY)
        except ObjectNotFound:
            raise RepositoryNotFound(f"no repository at {storage.url}") from None
        config = parse_config(raw)
        repo_id = bytes(config["id"])
        if config["encryption"] == "none":
            keys = KeyMaterial(id_key=bytes(config["id_key"]), enc_key=None)
        else:
            if not passphrase:
                raise WrongPassphrase("this repository is encrypted: a passphrase is needed")
            key_objs = sorted(o.key for o in storage.list(KEYS_PREFIX))
            if not key_objs:
                raise CorruptData("encrypted repository without key files", key=KEYS_PREFIX)
            error: RepositoryError | None = None
            for key in key_objs:
                try:
                    keys = open_key_file(storage.get_bytes(key), passphrase, repo_id, key)
                    break
                except (WrongPassphrase, CorruptData) as exc:
                    error = exc if error is None or isinstance(error, WrongPassphrase) else error
            else:
                assert error is not None
                raise error
        return cls(storage, config, keys)

    # --- chunking and ids -----------------------------------------------------------------
    def chunk_id(self, data: bytes | memoryview) -> bytes:
        """Keyed BLAKE3 of the plaintext: 32 bytes."""
        return blake3.blake3(data, key=self.keys.id_key).digest()

    def cdc_chunks(self, stream: BinaryIO) -> Iterator[bytes]:
        """Content-defined chunks (FastCDC, ~1 MiB average) of a binary stream."""
        return _chunker.cdc_chunks(stream, self.chunker_params)

    def fixed_chunks(self, stream: BinaryIO, size: int = 4 << 20) -> Iterator[bytes]:
        """Fixed-size chunks for images and block devices."""
        if size > MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {size} above the maximum {MAX_CHUNK_SIZE}")
        return _chunker.fixed_chunks(stream, size)

    # --- index ----------------------------------------------------------------------------
    def use_index_cache(self, cache_root: str | os.PathLike[str] | None) -> None:
        """Keep a local copy of the merged chunk index under ``cache_root/<repo id>/``
        (see ``index_cache.py``); ``None`` turns it off.  A backup then opens the index in
        milliseconds instead of parsing every index object.  Call :meth:`save_index_cache`
        after a backup so the next one finds its own chunks in the cache too."""
        self._index_cache_file = (
            None if cache_root is None else Path(cache_root) / self.id / INDEX_CACHE_NAME
        )

    def _list_index_objects(self) -> list[tuple[bytes, str]]:
        out = []
        for obj in sorted(self.storage.list(INDEX_PREFIX), key=lambda o: o.key):
            index_id = parse_obj_key(obj.key, INDEX_PREFIX)
            if index_id is not None:
                out.append((index_id, obj.key))
        return out

    def _list_packs(self) -> dict[bytes, int]:
        # Listed after the index objects: a pack is written before any index names it, so
        # every pack of an index object listed before is already visible here.
        sizes = {}
        for obj in self.storage.list(PACKS_PREFIX):
            pack_id = parse_pack_key(obj.key)
            if pack_id is not None:
                sizes[pack_id] = obj.size
        return sizes

    def _merge_index_objects(self, idx: ChunkIndex, objs: list[tuple[bytes, str]]) -> None:
        """Fetch and parse ``objs`` into ``idx`` (raises ObjectNotFound if one vanished)."""
        loaded = [(index_id, key, self.storage.get_bytes(key)) for index_id, key in objs]
        for index_id, key, data in loaded:
            try:
                for pack_id, entries in iter_index(self.envelope, index_id, data, key):
                    if pack_id in idx.pack_sizes:
                        idx.add_pack(pack_id, entries)
                        idx.indexed_overlay.add(pack_id)
                    else:
                        idx.missing_packs.add(pack_id)
            except CorruptData as exc:
                exc.args = (f"{exc}; rebuild_index() rebuilds the index from the packs",)
                raise
        del loaded
        malloc_trim()  # the parsed index objects were transient: hand their pages back

    def refresh_index(self) -> ChunkIndex:
        """Reload the merged chunk index from every ``index/*`` object.

        Packs that index objects list but the storage does not hold are left out: their
        chunks then count as absent, so the next backup stores them again and generations
        that referenced them become whole again (chunk ids are content addresses).
        """
        for _attempt in range(5):
            objs = self._list_index_objects()
            pack_sizes = self._list_packs()
            try:
                idx = self._load_index(objs, pack_sizes)
            except ObjectNotFound:
                continue  # an index object vanished (prune compacted them): list again
            with self._index_mutex:
                self._index = idx
            return idx
        raise RepositoryError("index objects keep changing while loading; is a prune running?")

    def _load_index(
        self, objs: list[tuple[bytes, str]], pack_sizes: dict[bytes, int]
    ) -> ChunkIndex:
        path = self._index_cache_file
        base = self._open_index_cache(objs, pack_sizes) if path is not None else None
        if base is not None:
            # the cache covers its index objects; only those added since are parsed
            idx = ChunkIndex(base)
            idx.pack_sizes = pack_sizes
            idx.missing_packs = set(base.missing)
            have = set(base.index_ids)
            self._merge_index_objects(idx, [o for o in objs if o[0] not in have])
            idx.index_ids = [index_id for index_id, _ in objs]
            return idx
        idx = ChunkIndex()
        idx.pack_sizes = pack_sizes
        self._merge_index_objects(idx, objs)
        idx.index_ids = [index_id for index_id, _ in objs]
        idx.indexed_overlay.clear()
        if path is None:
            return idx
        try:
            _write_full_cache(path, bytes.fromhex(self.id), idx)
            base = MappedIndex(path, bytes.fromhex(self.id))
        except (OSError, struct.error, IndexCacheError) as exc:
            # the backup goes on with the index in memory; only the next one is slower
            self._index_cache_warning(f"index cache {path} not written: {exc}")
            return idx
        cached = ChunkIndex(base)
        cached.pack_sizes = pack_sizes
        cached.missing_packs = idx.missing_packs
        cached.index_ids = idx.index_ids
        del idx
        malloc_trim()
        return cached

    def _open_index_cache(
        self, objs: list[tuple[bytes, str]], pack_sizes: dict[bytes, int]
    ) -> MappedIndex | None:
        """The cache file if it is intact and still describes this repository's index."""
        path = self._index_cache_file
        assert path is not None
        try:
            base = MappedIndex(path, bytes.fromhex(self.id))
        except FileNotFoundError:
            return None
        except (OSError, IndexCacheError) as exc:
            self._index_cache_warning(f"index cache {path} discarded ({exc}); rebuilding it")
            return None
        listed = {index_id for index_id, _ in objs}
        if (
            # an index object it was built from is gone (prune, rebuild_index)
            not listed.issuperset(base.index_ids)
            # a pack it points into is gone, or a pack missing at build time is back
            or not all(pid in pack_sizes for pid in base.pack_ids)
            or any(pid in pack_sizes for pid in base.missing)
        ):
            base.close()
            return None
        return base

    def _index_cache_warning(self, msg: str) -> None:
        self.index_cache_warnings.append(msg)
        _log.warning("%s", msg)

    def save_index_cache(self) -> None:
        """Bring the index cache up to date after a backup: merge in the chunks of the index
        objects this process loaded or wrote.  An index object written meanwhile by another
        client is left for the next load to parse; nothing here is needed for correctness."""
        idx, path = self._index, self._index_cache_file
        if idx is None or path is None or idx.cached is None:
            return
        base = idx.cached
        try:
            listed = dict(self._list_index_objects())
            have = set(idx.index_ids)
            if not have.issubset(listed):
                return  # an index object went away (prune): the next load rebuilds
            include = set(idx.indexed_overlay)
            new_ids = []
            for index_id in sorted(listed.keys() - have):
                key = listed[index_id]
                pids = index_pack_ids(self.envelope, index_id, self.storage.get_bytes(key), key)
                if not all(p in idx.packs.overlay or p in base.pack_set for p in pids):
                    return  # not this session's: the next load parses it
                include.update(p for p in pids if p not in base.pack_set)
                new_ids.append(index_id)
        except (StorageError, CorruptData):
            return
        if not include and not new_ids:
            return
        pack_ids = list(base.pack_ids)
        new: dict[bytes, bytes] = {}
        try:
            for pid in idx.packs.overlay:  # load order, then this session's order
                if pid not in include:
                    continue
                no = len(pack_ids)
                pack_ids.append(pid)
                for cid, offset, length, size in idx.packs.overlay[pid]:
                    if cid not in new and (not base.n or base.find(cid) < 0):
                        new[cid] = pack_location(no, offset, length, size)
            chunks = sorted(new.items())
            regions = build_regions(chunks) if base.n == 0 else merge_regions(base, chunks)
            write_cache(
                path,
                bytes.fromhex(self.id),
                have.union(new_ids),
                pack_ids,
                idx.missing_packs,
                regions,
            )
        except (OSError, struct.error) as exc:
            self._index_cache_warning(f"index cache {path} not updated: {exc}")

    @property
    def config(self) -> Any:
        """The repository's parsed config object (chunker, pack size, ...); read-only use."""
        return self._config

    @property
    def index(self) -> ChunkIndex:
        idx = self._index
        return idx if idx is not None else self.refresh_index()

    # --- reading --------------------------------------------------------------------------
    def read_chunk(self, chunk_id: bytes) -> bytes:
        """The chunk's plaintext, verified against its id.

        Raises :class:`MissingChunk` if no index lists it, :class:`CorruptData` (naming the
        pack and offset) if the stored bytes fail a check.  A pack removed by a concurrent
        prune triggers one index reload and retry.
        """
        for attempt in range(2):
            loc = self.index.by_chunk.get(chunk_id)
            if loc is None:
                if attempt == 0 and self._index is not None:
                    self.refresh_index()
                    continue
                raise MissingChunk(f"chunk {chunk_id.hex()} is not in the repository")
            pack_id, offset, length, size = loc
            key = pack_key(pack_id)
            try:
                blob = self.storage.get_range(key, offset, length)
            except ObjectNotFound:
                if attempt == 0:
                    self.refresh_index()
                    continue
                raise RepositoryError(
                    f"pack {key} is gone (removed by a concurrent prune?); reopen the repository"
                ) from None
            return self.open_chunk_blob(chunk_id, size, blob, key, offset)
        raise AssertionError("unreachable")

    def open_chunk_blob(
        self, chunk_id: bytes, size: int, blob: bytes, key: str, offset: int
    ) -> bytes:
        if len(blob) < 1:
            raise CorruptData("truncated chunk blob", key=key, offset=offset)
        data = self.envelope.open(
            BLOB_CHUNK, chunk_id, blob, max_size=size, where=key, offset=offset
        )
        if len(data) != size or self.chunk_id(data) != chunk_id:
            raise CorruptData(
                f"chunk {chunk_id.hex()[:16]} does not match its id", key=key, offset=offset
            )
        return data

    def read_chunks(self, chunk_ids: Iterable[bytes], *, window: int = 8) -> Iterator[bytes]:
        """Like :meth:`read_chunk` for many ids, in order, decrypting ahead in two threads."""
        pending: deque[Future[bytes]] = deque()
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fzui-read")
        finished = False
        try:
            for cid in chunk_ids:
                pending.append(pool.submit(self.read_chunk, cid))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
            finished = True
        finally:
            # Stopped early, this generator may be finalized by the garbage collector, at
            # any allocation of any thread, even inside threading's own locked code (seen:
            # a Thread.start collecting an abandoned item stream, whose join then waited for
            # the lock that very thread held). So only a finished read joins its threads;
            # otherwise the queued reads are cancelled and the running ones end on their own.
            pool.shutdown(wait=finished, cancel_futures=True)

    def read_pack_trailer(self, pack_id: bytes, size: int) -> list[PackEntry]:
        """Entries of a pack from its header, footer and trailer (3 small reads)."""
        key = pack_key(pack_id)
        if size < PACK_HEADER_LEN + PACK_FOOTER_LEN:
            raise CorruptData("pack too short", key=key, offset=0)
        check_pack_header(self.storage.get_range(key, 0, PACK_HEADER_LEN), key)
        toff, tlen = parse_footer(
            self.storage.get_range(key, size - PACK_FOOTER_LEN, PACK_FOOTER_LEN), size, key
        )
        return parse_trailer(
            self.envelope, pack_id, self.storage.get_range(key, toff, tlen), toff, key
        )

    # --- generations ----------------------------------------------------------------------
    def generation_ids(self) -> list[str]:
        out = []
        for obj in self.storage.list(MANIFESTS_PREFIX):
            name = obj.key[len(MANIFESTS_PREFIX) :]
            if valid_generation_id(name):
                out.append(name)
        return sorted(out)

    def open_generation(self, gen_id: str) -> Generation:
        if not valid_generation_id(gen_id):
            raise GenerationNotFound(f"no generation {gen_id!r}")
        key = manifest_key(gen_id)
        try:
            data = self.storage.get_bytes(key)
        except ObjectNotFound:
            raise GenerationNotFound(f"no generation {gen_id}") from None
        doc = parse_manifest(self.envelope, gen_id, data, key)
        return Generation(self, gen_id, doc.header, doc.item_chunks, doc.item_count)

    def generations(self) -> list[GenerationInfo]:
        """Every generation, oldest first."""
        out = []
        for gen_id in self.generation_ids():
            try:
                out.append(self.open_generation(gen_id).info)
            except GenerationNotFound:
                continue  # forgotten while listing
        out.sort(key=lambda g: (g.time, g.id))
        return out

    # --- writing and maintenance ----------------------------------------------------------
    def writer(
        self, lock: bool = True, progress: Progress | None = None, *, workers: int = 2
    ) -> Writer:
        """A backup session (context manager).  See :class:`freezer_ui.repository.writer.Writer`."""
        from freezer_ui.repository.writer import Writer

        return Writer(self, lock=lock, progress=progress, workers=workers)

    def lock(self, exclusive: bool = False, timeout: float | None = None) -> Lock:
        """A repository lock (context manager).  Restores may hold a shared one so that no
        prune removes data under them."""
        return Lock(self.storage, exclusive, self.lock_timeout if timeout is None else timeout)

    def verify(self, sample: float | None = None, progress: Progress | None = None) -> VerifyReport:
        from freezer_ui.repository.maintenance import verify

        return verify(self, sample=sample, progress=progress)

    def forget(self, policy: RetentionPolicy, **kwargs: Any) -> list[str]:
        from freezer_ui.repository.maintenance import forget

        return forget(self, policy, **kwargs)

    def prune(self, progress: Progress | None = None, **kwargs: Any) -> PruneStats:
        from freezer_ui.repository.maintenance import prune

        return prune(self, progress=progress, **kwargs)

    def rebuild_index(self) -> int:
        """Rebuild the index from the pack trailers (exclusive lock); returns packs indexed."""
        from freezer_ui.repository.maintenance import rebuild_index

        return rebuild_index(self)

    def __repr__(self) -> str:
        return f"<Repository {self.id} at {self.storage.url} ({self.encryption})>"


def _write_full_cache(path: Path, repo_id: bytes, idx: ChunkIndex) -> None:
    """A cache file from an index loaded in memory (``_Locations`` numbers its packs)."""
    locs = idx.by_chunk
    pack_ids = list(locs._pack_ids)
    numbers = dict(locs._pack_no)
    for pid in idx.packs:  # packs whose chunks all had a location elsewhere, too
        if pid not in numbers:
            numbers[pid] = len(pack_ids)
            pack_ids.append(pid)
    chunks = []
    for cid, v in locs._d.items():
        if type(v) is tuple:
            pid, offset, length, size = v
            chunks.append((cid, pack_location(numbers[pid], offset, length, size)))
        else:
            chunks.append(
                (cid, pack_location(v >> 104, (v >> 64) & _M40, (v >> 32) & _M32, v & _M32))
            )
    chunks.sort()
    write_cache(path, repo_id, idx.index_ids, pack_ids, idx.missing_packs, build_regions(chunks))


def parse_config(raw: bytes) -> dict[str, Any]:
    """Parse and check the ``config`` object (raises CorruptData / UnsupportedFormat)."""
    version, config = load_checked(CONFIG_MAGIC, FORMAT_VERSION, raw, CONFIG_KEY)
    try:
        if int(config["version"]) != version:
            raise CorruptData("config version fields disagree", key=CONFIG_KEY)
        if not isinstance(config["id"], bytes) or len(config["id"]) != 16:
            raise CorruptData("bad repository id", key=CONFIG_KEY)
        if config["encryption"] not in ENCRYPTIONS:
            raise UnsupportedFormat(f"unknown encryption {config['encryption']!r}")
        if config["encryption"] == "none" and (
            not isinstance(config.get("id_key"), bytes) or len(config["id_key"]) != 32
        ):
            raise CorruptData("bad id key", key=CONFIG_KEY)
        ChunkerParams.from_doc(config["chunker"])
        ChunkerParams.from_doc(config["item_chunker"])
        if config["compression"]["algorithm"] != "zstd":
            raise UnsupportedFormat(f"unknown compression {config['compression']!r}")
        if not 1 <= int(config["compression"]["level"]) <= 22:
            raise CorruptData("bad compression level", key=CONFIG_KEY)
        if not 1 << 16 <= int(config["pack_size"]) <= 1 << 32:
            raise CorruptData("bad pack size", key=CONFIG_KEY)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptData(f"malformed config: {exc}", key=CONFIG_KEY) from None
    return config


def default_hostname() -> str:
    return socket.gethostname()


__all__ = [
    "ChunkIndex",
    "ChunkRef",
    "Generation",
    "GenerationInfo",
    "Repository",
    "StorageError",
]
