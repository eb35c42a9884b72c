"""Backup sessions: add chunks, then commit a generation (docs/format.md, "Writing").

Order of writes is the crash-safety argument: packs first, then the index object that
lists them, then the manifest.  A session killed at any point leaves at worst packs (and
an index) that no manifest references: no visible generation.  The next session adopts
packs that no index lists, so their chunks are not uploaded again.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]

from freezer_ui.progress import Progress
from freezer_ui.repository._malloc import malloc_trim
from freezer_ui.repository.chunker import StreamCutter
from freezer_ui.repository.crypto import BLOB_CHUNK
from freezer_ui.repository.errors import CorruptData, MissingChunk, RepositoryError
from freezer_ui.repository.format import (
    FORMAT_VERSION,
    MAX_CHUNK_SIZE,
    ManifestDoc,
    PackBuilder,
    PackEntry,
    dump_index_encoded,
    dump_manifest,
    encode_entries,
    index_key,
    item_chunk_refs,
    manifest_key,
    pack_key,
)
from freezer_ui.repository.locks import Lock
from freezer_ui.repository.repository import ChunkRef
from freezer_ui.storage import StorageError

if TYPE_CHECKING:
    from freezer_ui.repository.crypto import Envelope
    from freezer_ui.repository.repository import Repository

# New chunks are sealed (compressed, encrypted) in the pool in batches of up to this many
# plaintext bytes or chunks: one future per chunk cost more than sealing a small chunk.
SEAL_BATCH_BYTES = 1 << 20
SEAL_BATCH_CHUNKS = 128
# Plaintext bytes handed to the pool and not yet in a pack, per worker.
PENDING_BYTES_PER_WORKER = 4 << 20
# Sealed blobs buffered for a pack upload that has not written them yet.
STREAM_BUFFER = 4 << 20
# Small blobs are handed to the upload joined into pieces of this size.
COALESCE_BYTES = 256 << 10


class _UploadAborted(Exception):
    """Raised inside a pack upload's iterable so the storage discards the object."""


class _PackStream:
    """The iterable a pack upload (``storage.put`` in the uploader thread) consumes while
    the writer produces the pack's parts: a pack is written as it is filled, never held
    whole in memory.  At most ``limit`` bytes wait in between (the writer blocks)."""

    def __init__(self, limit: int = STREAM_BUFFER) -> None:
        self._cond = threading.Condition()
        self._parts: deque[bytes] = deque()
        self._buffered = 0
        self._limit = limit
        self._closed = False
        self._aborted = False
        self._fut: Future[int] | None = None

    def attach(self, fut: Future[int]) -> None:
        self._fut = fut
        fut.add_done_callback(self._wake)

    def _wake(self, _fut: object = None) -> None:
        with self._cond:
            self._cond.notify_all()

    def feed(self, part: bytes) -> None:
        with self._cond:
            while self._buffered >= self._limit and not (self._fut and self._fut.done()):
                self._cond.wait()
            if self._fut is not None and self._fut.done():
                exc = self._fut.exception() if not self._fut.cancelled() else None
                if exc is not None:
                    raise exc
                raise RepositoryError("pack upload ended before the pack was complete")
            self._parts.append(part)
            self._buffered += len(part)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._parts.clear()
            self._cond.notify_all()

    def __iter__(self) -> Iterator[bytes]:
        cond = self._cond
        while True:
            with cond:
                while not self._parts and not self._closed and not self._aborted:
                    cond.wait()
                if self._aborted:
                    raise _UploadAborted("backup session aborted")
                if not self._parts:
                    return
                part = self._parts.popleft()
                self._buffered -= len(part)
                cond.notify_all()
            yield part


class _Coalescer:
    """The sink a pack builder writes to: small parts (the blobs of small files, a few KiB
    each) are joined into pieces of ``limit`` bytes before they go to the upload.  Each
    ``feed`` wakes the uploader thread and costs it a write: one per blob was ~70k thread
    hand-offs for the bench corpus' first backup."""

    def __init__(self, feed: Callable[[bytes], None], limit: int = COALESCE_BYTES) -> None:
        self._feed = feed
        self._limit = limit
        self._parts: list[bytes | memoryview] = []
        self._size = 0

    def __call__(self, part: bytes | memoryview) -> None:
        if len(part) >= self._limit:
            self.flush()
            # storages are given bytes (a view from add_sealed points into a larger buffer)
            self._feed(part if type(part) is bytes else bytes(part))
            return
        self._parts.append(part)
        self._size += len(part)
        if self._size >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            parts = self._parts
            self._parts = []
            self._size = 0
            self._feed(b"".join(parts))


def _seal_batch(envelope: Envelope, batch: list[tuple[bytes, int, bytes]]) -> list[bytes]:
    return [envelope.seal(BLOB_CHUNK, cid, payload) for cid, _size, payload in batch]


class Writer:
    """One backup session (use as a context manager).

    ``add_chunk`` hashes in the caller's thread and, for new chunks only, compresses and
    encrypts in a small thread pool (zstd and AES-GCM release the GIL), small chunks in
    batches.  Memory is bounded by bytes, not by the pack size: at most
    ``PENDING_BYTES_PER_WORKER`` x workers of plaintext (or one larger chunk) wait for the
    pool, and packs are streamed to storage while they are filled (``STREAM_BUFFER`` bytes
    buffered per upload, at most two uploads: one being filled, one finishing).

    A writer is fed from one thread (its methods are not thread-safe); run one writer per
    thread for parallel backups.  The writer holds a shared lock for its whole life (prune
    waits for it).  ``progress``,
    when given, is advanced by the plaintext size of every chunk passed to ``add_chunk``
    (new or deduplicated), so engines only count files.
    """

    def __init__(
        self,
        repo: Repository,
        *,
        lock: bool = True,
        progress: Progress | None = None,
        workers: int = 2,
        max_pending: int | None = None,
    ) -> None:
        self.repo = repo
        self.storage = repo.storage
        self.progress = progress
        self._lock = (
            Lock(repo.storage, exclusive=False, timeout=repo.lock_timeout) if lock else None
        )
        self._workers = max(1, workers)
        # max_pending: batches waiting for the pool (the byte bound usually binds first)
        self._max_pending = max_pending if max_pending is not None else 8 * self._workers
        self._max_pending_bytes = PENDING_BYTES_PER_WORKER * self._workers
        self._pool: ThreadPoolExecutor | None = None
        self._uploader: ThreadPoolExecutor | None = None
        self._batch: list[tuple[bytes, int, bytes]] = []
        self._batch_bytes = 0
        self._pending: deque[tuple[list[tuple[bytes, int]], int, Future[list[bytes]]]] = deque()
        self._pending_bytes = 0
        self._builder: PackBuilder | None = None
        self._sink = _Coalescer(lambda part: None)  # the pack being filled's, once there is one
        self._stream: _PackStream | None = None
        self._stream_fut: Future[int] | None = None
        self._uploads: deque[tuple[bytes, list[PackEntry], Future[int]]] = deque()
        self._seen: set[bytes] = set()
        # pack id -> its entries msgpack-encoded for the index object (compact until then)
        self._unindexed: dict[bytes, bytes] = {}
        self._failed: BaseException | None = None
        self._opened = False
        self._closed = False
        self.stats = {
            "chunks": 0,
            "new_chunks": 0,
            "bytes": 0,
            "new_bytes": 0,
            "stored_bytes": 0,
            "packs": 0,
            "reused_packs": 0,
        }

    # --- life cycle -----------------------------------------------------------------------
    def open(self) -> Writer:
        if self._opened:
            return self
        if self._lock is not None:
            self._lock.acquire()
        try:
            self._index = self.repo.refresh_index()
            self._adopt_orphan_packs()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="fzui-seal")
        # two: the pack being filled streams while the previous one finishes (fsync)
        self._uploader = ThreadPoolExecutor(2, thread_name_prefix="fzui-upload")
        self._opened = True
        return self

    def _adopt_orphan_packs(self) -> None:
        """Index the packs no index lists (left by a killed session) so they are reused."""
        for pack_id, size in list(self._index.pack_sizes.items()):
            if pack_id in self._index.packs:
                continue
            try:
                entries = self.repo.read_pack_trailer(pack_id, size)
            except (CorruptData, StorageError):
                continue  # not ours to fix: verify reports it, prune removes it
            self._index.add_pack(pack_id, entries)
            self._unindexed[pack_id] = encode_entries(entries)
            self.stats["reused_packs"] += 1

    def __enter__(self) -> Writer:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(abort=exc_type is not None)

    def close(self, abort: bool = False) -> None:
        """End the session.  Chunks added since the last commit are flushed into packs and
        indexed (so a later session reuses them); with ``abort`` pending chunks are dropped
        and uploaded packs are left for the next session to adopt.  No generation is made."""
        if self._closed or not self._opened:
            return
        try:
            if not abort and self._failed is None:
                self.flush()
            else:
                # Uploaded packs stay without an index object, exactly as after a kill: the
                # next session adopts them, prune deletes them first when space is short.
                # Writing an index here could fail anyway (disk full) and gains nothing.
                for _metas, _nbytes, fut in self._pending:
                    fut.cancel()
                self._pending.clear()
                self._batch = []
                self._abort_stream()
                while self._uploads:
                    try:
                        self._wait_upload()
                    except (StorageError, RepositoryError):
                        pass
        finally:
            self._closed = True
            assert self._pool is not None and self._uploader is not None
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._uploader.shutdown(wait=True, cancel_futures=True)
            if self._lock is not None:
                self._lock.release()

    def _check(self) -> None:
        if not self._opened:
            raise RepositoryError("writer not opened (use it as a context manager)")
        if self._closed:
            raise RepositoryError("writer is closed")
        if self._failed is not None:
            raise RepositoryError(f"writer failed earlier: {self._failed}") from self._failed

    # --- chunks ---------------------------------------------------------------------------
    def known(self, chunk_id: bytes) -> bool:
        """Whether the repository (or this session) already holds the chunk."""
        return chunk_id in self._seen or chunk_id in self._index.by_chunk

    def add_chunk(self, data: bytes | memoryview, chunk_id: bytes | None = None) -> ChunkRef:
        """Store a chunk unless it is already known; return its reference at once.

        ``data`` may be a memoryview that the caller reuses afterwards: it is copied when
        it has to be stored.  ``chunk_id``, when given, must be ``repo.chunk_id(data)``,
        computed by the caller in another thread (keyed BLAKE3 releases the GIL): it saves
        hashing in the caller's thread, which feeds the writer and is the busiest one.
        """
        return self._add(data, count=True, cid=chunk_id)

    def add_chunks(self, chunks: Iterable[bytes | memoryview]) -> Iterator[ChunkRef]:
        """``add_chunk`` over an iterable (hashing here, sealing in the pool)."""
        for data in chunks:
            yield self._add(data, count=True)

    def _add(self, data: bytes | memoryview, *, count: bool, cid: bytes | None = None) -> ChunkRef:
        self._check()
        size = len(data)
        if size > MAX_CHUNK_SIZE:
            raise RepositoryError(f"chunk of {size} bytes exceeds {MAX_CHUNK_SIZE}")
        if cid is None:
            cid = self.repo.chunk_id(data)
        if count:
            self.stats["chunks"] += 1
            self.stats["bytes"] += size
            if self.progress is not None:
                self.progress.advance(bytes=size)
        if self.known(cid):
            return ChunkRef(cid, size)
        self._seen.add(cid)
        if count:
            self.stats["new_chunks"] += 1
            self.stats["new_bytes"] += size
        payload = data if isinstance(data, bytes) else bytes(data)
        self._batch.append((cid, size, payload))
        self._batch_bytes += size
        if self._batch_bytes >= SEAL_BATCH_BYTES or len(self._batch) >= SEAL_BATCH_CHUNKS:
            try:
                self._submit_batch()
                while self._pending and (
                    self._pending_bytes > self._max_pending_bytes
                    or len(self._pending) > self._max_pending
                ):
                    self._drain_one()
            except BaseException as exc:
                self._failed = exc
                raise
        return ChunkRef(cid, size)

    def add_sealed(self, chunk_id: bytes, size: int, blob: bytes | memoryview | None) -> ChunkRef:
        """Store a chunk that was hashed and sealed elsewhere, unless it is already known.

        For the backup's worker processes: they seal (compress, encrypt) new-looking chunks
        with this repository's envelope, and this session decides what is new, so
        deduplication stays exact (a chunk two workers both sealed is stored once, the
        second blob is dropped).  ``blob`` is ``None`` when the caller knows the chunk is
        stored already (it was in the index when the caller started, or the caller passed
        its blob earlier): that must then be true here, else the chunk would be lost.
        """
        self._check()
        if size > MAX_CHUNK_SIZE:
            raise RepositoryError(f"chunk of {size} bytes exceeds {MAX_CHUNK_SIZE}")
        stats = self.stats
        stats["chunks"] += 1
        stats["bytes"] += size
        if self.progress is not None:
            self.progress.advance(bytes=size)
        if chunk_id in self._seen or chunk_id in self._index.by_chunk:
            return ChunkRef(chunk_id, size)
        if blob is None:
            exc = RepositoryError(
                f"chunk {chunk_id.hex()} was reported as stored but is not in the repository"
            )
            self._failed = exc
            raise exc
        self._seen.add(chunk_id)
        stats["new_chunks"] += 1
        stats["new_bytes"] += size
        try:
            self._place(chunk_id, size, blob)
        except BaseException as exc:
            self._failed = exc
            raise
        return ChunkRef(chunk_id, size)

    def _place(self, chunk_id: bytes, size: int, blob: bytes | memoryview) -> None:
        builder = self._builder if self._builder is not None else self._start_pack()
        builder.add(chunk_id, size, blob)
        self.stats["stored_bytes"] += len(blob)
        if builder.pos >= self.repo.pack_size:
            self._flush_pack()

    def _submit_batch(self) -> None:
        if not self._batch:
            return
        batch, nbytes = self._batch, self._batch_bytes
        self._batch, self._batch_bytes = [], 0
        assert self._pool is not None
        fut = self._pool.submit(_seal_batch, self.repo.envelope, batch)
        self._pending.append(([(cid, size) for cid, size, _ in batch], nbytes, fut))
        self._pending_bytes += nbytes

    def _drain_one(self) -> None:
        metas, nbytes, fut = self._pending.popleft()
        blobs = fut.result()
        self._pending_bytes -= nbytes
        for (cid, size), blob in zip(metas, blobs, strict=True):
            self._place(cid, size, blob)

    def _start_pack(self) -> PackBuilder:
        """A new pack whose upload starts now and consumes its parts as they are added."""
        assert self._uploader is not None
        stream = _PackStream()
        self._sink = _Coalescer(stream.feed)
        builder = PackBuilder(self.repo.envelope, sink=self._sink)
        fut = self._uploader.submit(self.storage.put, pack_key(builder.pack_id), stream)
        stream.attach(fut)
        self._builder, self._stream, self._stream_fut = builder, stream, fut
        return builder

    def _flush_pack(self) -> None:
        builder, stream, fut = self._builder, self._stream, self._stream_fut
        if builder is None:
            return
        assert stream is not None and fut is not None
        self._builder = self._stream = self._stream_fut = None
        try:
            builder.finish()  # trailer and footer go to the stream
            self._sink.flush()
        except BaseException:
            stream.abort()
            raise
        stream.close()
        self._uploads.append((builder.pack_id, builder.entries, fut))
        # At most one finished pack still uploading (fsync) while the next one fills.
        while len(self._uploads) > 1:
            self._wait_upload()

    def _abort_stream(self) -> None:
        """Drop the pack being filled: its upload stores nothing."""
        stream, fut = self._stream, self._stream_fut
        self._builder = self._stream = self._stream_fut = None
        if stream is None or fut is None:
            return
        stream.abort()
        try:
            fut.result()
        except BaseException:  # noqa: BLE001 - _UploadAborted or the storage's own error
            pass

    def _wait_upload(self) -> None:
        if not self._uploads:
            return
        pack_id, entries, fut = self._uploads.popleft()
        fut.result()
        malloc_trim()
        self._unindexed[pack_id] = encode_entries(entries)
        self._index.add_pack(pack_id, entries)
        # now known through the index: ``_seen`` only holds chunks not yet in an uploaded pack
        seen = self._seen
        for e in entries:
            seen.discard(e.chunk_id)
        self.stats["packs"] += 1
        if self._lock is not None:
            self._lock.refresh()

    def _write_index(self) -> None:
        if not self._unindexed:
            return
        index_id = os.urandom(16)
        self.storage.put(
            index_key(index_id), [dump_index_encoded(self.repo.envelope, index_id, self._unindexed)]
        )
        self._unindexed = {}

    def flush(self) -> None:
        """Seal every pending chunk, upload the last pack and write the index object."""
        self._check()
        try:
            self._submit_batch()
            while self._pending:
                self._drain_one()
            self._flush_pack()
            while self._uploads:
                self._wait_upload()
            self._write_index()
        except BaseException as exc:
            self._failed = exc
            raise

    # --- commit ---------------------------------------------------------------------------
    def commit(self, header: dict[str, Any], items: Iterable[dict[str, Any]]) -> str:
        """Write a generation: the item stream as chunks, flush, index, then the manifest.

        Every chunk an item references must be known (added in this session or already in
        the index), else :class:`MissingChunk` is raised and no generation is written: a
        manifest never points at a chunk the index does not hold.  ``header`` is stored as
        given, with ``time`` (epoch seconds), ``hostname``, ``format_version`` and ``stats``
        (this session's counters, under the engine's own) filled in.  Returns the new
        generation id.
        """
        self._check()
        if not isinstance(header, dict):
            raise TypeError("header must be a dict")
        # cut every 1 MiB of item stream (the same chunks as any other size: see StreamCutter)
        # rather than 8 MiB, which held ~3 copies of 8 MiB at each cut
        cutter = StreamCutter(self.repo.item_chunker_params, flush_at=1 << 20)
        packer = msgpack.Packer(use_bin_type=True)
        item_chunks: list[tuple[bytes, int]] = []
        count = 0
        meta_bytes = 0
        for item in items:
            try:
                refs = item_chunk_refs(item)
            except ValueError as exc:
                raise RepositoryError(f"item {count}: {exc}") from None
            for cid, _size in refs:
                if not self.known(cid):
                    raise MissingChunk(
                        f"item {item.get('path', count)!r} references chunk {cid.hex()} "
                        "that is not in the repository"
                    )
            try:
                data = packer.pack(item)
            except (TypeError, ValueError) as exc:
                raise RepositoryError(f"item {count} cannot be serialized: {exc}") from None
            meta_bytes += len(data)
            count += 1
            for piece in cutter.push(data):
                item_chunks.append(tuple(self._add(piece, count=False)))  # type: ignore[arg-type]
        for piece in cutter.finish():
            item_chunks.append(tuple(self._add(piece, count=False)))  # type: ignore[arg-type]
        self.flush()

        full = dict(header)
        full.setdefault("time", time.time())
        full.setdefault("hostname", socket.gethostname())
        full["format_version"] = FORMAT_VERSION
        stats = dict(self.stats)
        stats.update({"items": count, "metadata_bytes": meta_bytes})
        engine_stats = header.get("stats")
        if isinstance(engine_stats, dict):
            stats.update(engine_stats)
        full["stats"] = stats
        gen_id = os.urandom(16).hex()
        doc = ManifestDoc(full, item_chunks, count)
        try:
            blob = dump_manifest(self.repo.envelope, gen_id, doc)
        except (TypeError, ValueError) as exc:
            raise RepositoryError(f"header cannot be serialized: {exc}") from None
        self.storage.put(manifest_key(gen_id), [blob])
        return gen_id
