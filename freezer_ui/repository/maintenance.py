"""verify, forget (retention) and prune (garbage collection)."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from freezer_ui.progress import Progress
from freezer_ui.repository.crypto import KEYFILE_MAGIC, KEYFILE_VERSION, load_checked
from freezer_ui.repository.errors import (
    CorruptData,
    GenerationNotFound,
    MissingChunk,
    RepositoryError,
)
from freezer_ui.repository.format import (
    CONFIG_KEY,
    INDEX_PREFIX,
    KEYS_PREFIX,
    PACKS_PREFIX,
    PackBuilder,
    PackEntry,
    dump_index,
    index_key,
    item_chunk_refs,
    manifest_key,
    pack_key,
    parse_index,
    parse_obj_key,
    parse_pack,
    parse_pack_key,
)
from freezer_ui.repository.locks import Lock
from freezer_ui.storage import ObjectNotFound, StorageError

if TYPE_CHECKING:
    from freezer_ui.repository.repository import GenerationInfo, Repository


# --- verify -------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """Outcome of :func:`verify`.  ``ok`` is False when any error was found."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    packs_checked: int = 0
    packs_sampled: int = 0
    chunks_checked: int = 0
    bytes_checked: int = 0
    generations_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def verify(
    repo: Repository, *, sample: float | None = None, progress: Progress | None = None
) -> VerifyReport:
    """Check the whole repository; ``sample`` (0..1) re-hashes only that fraction of packs.

    Every pack's structure (header, footer, trailer) is always checked; sampled packs (all
    when ``sample`` is None) are read in full and every chunk is decrypted and re-hashed.
    Index objects must agree with the pack trailers, every manifest must parse, and every
    chunk a generation references (item stream and items) must be in the index.
    """
    from freezer_ui.repository.repository import parse_config

    report = VerifyReport()
    storage = repo.storage
    # config and key files: checksums (the open already did it once, re-check now).
    try:
        parse_config(storage.get_bytes(CONFIG_KEY))
    except (RepositoryError, StorageError) as exc:
        report.errors.append(f"config: {exc}")
    for obj in list(storage.list(KEYS_PREFIX)):
        try:
            load_checked(KEYFILE_MAGIC, KEYFILE_VERSION, storage.get_bytes(obj.key), obj.key)
        except (RepositoryError, StorageError) as exc:
            report.errors.append(f"key file: {exc}")

    # index objects
    indexed: dict[bytes, dict[bytes, PackEntry]] = {}
    by_chunk: dict[bytes, PackEntry] = {}
    for obj in sorted(storage.list(INDEX_PREFIX), key=lambda o: o.key):
        index_id = parse_obj_key(obj.key, INDEX_PREFIX)
        if index_id is None:
            report.warnings.append(f"unexpected object {obj.key}")
            continue
        try:
            packs = parse_index(repo.envelope, index_id, storage.get_bytes(obj.key), obj.key)
        except (RepositoryError, StorageError) as exc:
            report.errors.append(f"index: {exc}")
            continue
        for pack_id, entries in packs.items():
            slot = indexed.setdefault(pack_id, {})
            for e in entries:
                slot[e.chunk_id] = e
                by_chunk.setdefault(e.chunk_id, e)

    # packs
    pack_objs: dict[bytes, int] = {}
    for obj in storage.list(PACKS_PREFIX):
        maybe_id = parse_pack_key(obj.key)
        if maybe_id is None:
            report.warnings.append(f"unexpected object {obj.key}")
            continue
        pack_objs[maybe_id] = obj.size
    for pack_id in indexed:
        if pack_id not in pack_objs:
            report.errors.append(f"index lists missing pack {pack_key(pack_id)}")
    ids = sorted(pack_objs)
    if sample is None:
        full = set(ids)
    else:
        k = min(len(ids), math.ceil(len(ids) * max(0.0, min(1.0, sample))))
        full = set(random.sample(ids, k))
    if progress is not None:
        progress.start(
            total_bytes=sum(pack_objs[p] for p in full), total_files=len(ids), label="verify"
        )
    for pack_id in ids:
        key = pack_key(pack_id)
        size = pack_objs[pack_id]
        try:
            if pack_id in full:
                data = storage.get_bytes(key)
                entries = parse_pack(repo.envelope, pack_id, data, key)
                for e in entries:
                    try:
                        repo.open_chunk_blob(
                            e.chunk_id, e.size, data[e.offset : e.offset + e.length], key, e.offset
                        )
                        report.chunks_checked += 1
                    except RepositoryError as exc:
                        report.errors.append(f"chunk: {exc}")
                report.bytes_checked += len(data)
                report.packs_sampled += 1
                if progress is not None:
                    progress.advance(bytes=len(data), files=1)
            else:
                entries = repo.read_pack_trailer(pack_id, size)
                if progress is not None:
                    progress.advance(files=1)
        except (RepositoryError, StorageError) as exc:
            report.errors.append(f"pack: {exc}")
            continue
        report.packs_checked += 1
        if pack_id not in indexed:
            report.warnings.append(f"pack {key} is in no index (left by an interrupted backup)")
            continue
        in_pack = {e.chunk_id: e for e in entries}
        for cid, e in indexed[pack_id].items():
            if in_pack.get(cid) != e:
                report.errors.append(f"index entry for chunk {cid.hex()} disagrees with pack {key}")

    # generations
    for gen_id in repo.generation_ids():
        try:
            gen = repo.open_generation(gen_id)
            for cid, size in gen.item_chunks:
                if cid not in by_chunk or by_chunk[cid].size != size:
                    raise MissingChunk(f"item-stream chunk {cid.hex()} not in the index")
            n = 0
            for item in gen.items():
                n += 1
                try:
                    refs = item_chunk_refs(item)
                except ValueError as exc:
                    raise CorruptData(f"bad item: {exc}", key=manifest_key(gen_id)) from None
                for cid, size in refs:
                    found = by_chunk.get(cid)
                    if found is None:
                        raise MissingChunk(
                            f"chunk {cid.hex()} of item {item.get('path', n)!r} not in the index"
                        )
                    if found.size != size:
                        raise CorruptData(
                            f"chunk {cid.hex()} size disagrees with the index",
                            key=manifest_key(gen_id),
                        )
            if n != gen.item_count:
                raise CorruptData(
                    "item count disagrees with the manifest", key=manifest_key(gen_id)
                )
            report.generations_checked += 1
        except GenerationNotFound:
            continue
        except (RepositoryError, StorageError) as exc:
            report.errors.append(f"generation {gen_id}: {exc}")
    if progress is not None:
        progress.finish()
    return report


# --- forget -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionPolicy:
    """Which generations to keep, per (hostname, backup_name) group.

    A generation is kept when any ``keep_*`` rule selects it, or when it is younger than
    ``older_than``.  ``keep_daily=7`` keeps the newest generation of each of the 7 most
    recent days that have one (weekly: ISO weeks, monthly: calendar months, all UTC).
    A policy with no rule at all is refused (it would remove everything).
    """

    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    older_than: timedelta | None = None

    def __post_init__(self) -> None:
        if all(
            getattr(self, f) is None
            for f in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "older_than")
        ):
            raise ValueError("a retention policy needs at least one rule")
        for f in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"):
            v = getattr(self, f)
            if v is not None and v < 0:
                raise ValueError(f"{f} must be >= 0")

    def select(self, gens: Sequence[GenerationInfo], now: datetime | None = None) -> set[str]:
        """Ids to keep among ``gens`` (one group)."""
        now = now or datetime.now(timezone.utc)
        newest_first = sorted(gens, key=lambda g: (g.time, g.id), reverse=True)
        keep: set[str] = set()
        if self.keep_last:
            keep.update(g.id for g in newest_first[: self.keep_last])
        buckets = (
            (self.keep_daily, lambda t: t.date().isoformat()),
            (self.keep_weekly, lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
            (self.keep_monthly, lambda t: f"{t.year}-{t.month:02d}"),
        )
        for n, bucket in buckets:
            if not n:
                continue
            seen: set[str] = set()
            for g in newest_first:
                b = bucket(g.time)
                if b in seen:
                    continue
                seen.add(b)
                keep.add(g.id)
                if len(seen) >= n:
                    break
        if self.older_than is not None:
            keep.update(g.id for g in newest_first if g.time > now - self.older_than)
        return keep


def forget(
    repo: Repository,
    policy: RetentionPolicy,
    *,
    backup_name: str | None = None,
    hostname: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Remove the manifests the policy does not keep; return their ids.  Data stays until
    :func:`prune`.  Runs under a shared lock (backups may continue)."""
    with Lock(repo.storage, exclusive=False, timeout=repo.lock_timeout):
        groups: dict[tuple[str, str], list[GenerationInfo]] = {}
        for g in repo.generations():
            if backup_name is not None and g.backup_name != backup_name:
                continue
            if hostname is not None and g.hostname != hostname:
                continue
            groups.setdefault((g.hostname, g.backup_name), []).append(g)
        removed = []
        for gens in groups.values():
            keep = policy.select(gens, now)
            for g in gens:
                if g.id not in keep:
                    removed.append(g.id)
        removed.sort()
        if not dry_run:
            for gen_id in removed:
                try:
                    repo.storage.delete(manifest_key(gen_id))
                except ObjectNotFound:
                    pass
        return removed


# --- prune --------------------------------------------------------------------------------
@dataclass
class PruneStats:
    packs_deleted: int = 0
    packs_rewritten: int = 0
    packs_written: int = 0
    packs_kept: int = 0
    chunks_live: int = 0
    chunks_removed: int = 0
    bytes_freed: int = 0
    index_objects_replaced: int = 0
    missing_chunks: int = 0
    leftovers_removed: int = 0


def prune(
    repo: Repository,
    *,
    progress: Progress | None = None,
    rewrite_below: float = 0.5,
    lock_timeout: float | None = None,
) -> PruneStats:
    """Delete data no generation references, under an exclusive lock.

    Steps, in this order so that a crash at any point leaves every live generation whole:
    0. delete packs no index lists (left by interrupted backups; they hold nothing live);
    1. collect live chunk ids from every manifest (any unreadable manifest aborts prune);
    2. copy live chunks out of packs whose live share is below ``rewrite_below`` into new
       packs (blobs are moved as stored: their AAD binds the chunk id, not the pack);
    3. write one new index object listing every live chunk;
    4. delete the old index objects, then the dead and rewritten packs, then the debris of
       interrupted uploads (``Storage.remove_leftovers``).
    Readers that opened the repository before reload their index when a pack vanishes.
    """
    stats = PruneStats()
    storage = repo.storage
    with Lock(
        storage, exclusive=True, timeout=repo.lock_timeout if lock_timeout is None else lock_timeout
    ):
        index = repo.refresh_index()
        live: set[bytes] = set()
        for gen_id in repo.generation_ids():
            try:
                gen = repo.open_generation(gen_id)
            except GenerationNotFound:
                continue
            live.update(cid for cid, _ in gen.item_chunks)
            for item in gen.items():
                try:
                    live.update(cid for cid, _ in item_chunk_refs(item))
                except ValueError as exc:
                    raise CorruptData(f"bad item: {exc}", key=manifest_key(gen_id)) from None
        stats.chunks_live = len(live)

        sizes = {}
        for obj in storage.list(PACKS_PREFIX):
            pid = parse_pack_key(obj.key)
            if pid is not None:
                sizes[pid] = obj.size
        # Packs that vanished are ignored; packs in no index hold nothing live (a manifest
        # only references indexed chunks), so they are deleted.
        packs = {pid: ents for pid, ents in index.packs.items() if pid in sizes}
        # Orphans go first: deleting them needs no new index, so a prune on a full disk
        # frees the space an interrupted backup took before it has to write anything.
        for pid in [pid for pid in sizes if pid not in index.packs]:
            try:
                storage.delete(pack_key(pid))
                stats.bytes_freed += sizes[pid]
                stats.packs_deleted += 1
            except ObjectNotFound:
                pass

        def live_ratio(pid: bytes) -> float:
            lb = sum(e.length for e in packs[pid] if e.chunk_id in live)
            return lb / max(1, sizes[pid])

        claimed: dict[bytes, tuple[bytes, PackEntry]] = {}
        for pid in sorted(packs, key=live_ratio, reverse=True):
            for e in packs[pid]:
                if e.chunk_id in live and e.chunk_id not in claimed:
                    claimed[e.chunk_id] = (pid, e)
        stats.missing_chunks = len(live - claimed.keys())
        per_pack: dict[bytes, list[PackEntry]] = {}
        for pid, e in claimed.values():
            per_pack.setdefault(pid, []).append(e)

        keep: dict[bytes, list[PackEntry]] = {}
        rewrite: list[bytes] = []
        delete: list[bytes] = []
        for pid in packs:
            ents = per_pack.get(pid, [])
            lb = sum(e.length for e in ents)
            if not ents:
                delete.append(pid)
            elif lb / max(1, sizes[pid]) < rewrite_below:
                rewrite.append(pid)
            else:
                keep[pid] = sorted(ents, key=lambda e: e.offset)
        if progress is not None:
            progress.start(
                total_bytes=sum(sizes[p] for p in rewrite), total_files=len(rewrite), label="prune"
            )

        # 2. rewrite
        builder = PackBuilder(repo.envelope)
        new_packs: dict[bytes, list[PackEntry]] = {}

        def flush() -> None:
            nonlocal builder
            if len(builder):
                storage.put(builder.key, builder.finish())
                new_packs[builder.pack_id] = builder.entries
                stats.packs_written += 1
            builder = PackBuilder(repo.envelope)

        for pid in rewrite:
            key = pack_key(pid)
            data = storage.get_bytes(key)
            for e in sorted(per_pack[pid], key=lambda e: e.offset):
                blob = data[e.offset : e.offset + e.length]
                # Never copy damage forward: a bad blob aborts before anything is deleted.
                repo.open_chunk_blob(e.chunk_id, e.size, blob, key, e.offset)
                builder.add(e.chunk_id, e.size, blob)
                if builder.pos >= repo.pack_size:
                    flush()
            if progress is not None:
                progress.advance(bytes=len(data), files=1)
        flush()

        # 3. new index, 4. deletions
        new_index = dict(keep)
        new_index.update(new_packs)
        new_id = os.urandom(16)
        storage.put(index_key(new_id), [dump_index(repo.envelope, new_id, new_index)])
        for old in index.index_ids:
            try:
                storage.delete(index_key(old))
                stats.index_objects_replaced += 1
            except ObjectNotFound:
                pass
        for pid in delete + rewrite:
            try:
                storage.delete(pack_key(pid))
                stats.bytes_freed += sizes[pid]
            except ObjectNotFound:
                pass
        stats.packs_deleted += len(delete)
        stats.packs_rewritten = len(rewrite)
        stats.packs_kept = len(keep)
        stats.chunks_removed = len({e.chunk_id for ents in packs.values() for e in ents} - live)
        stats.leftovers_removed = storage.remove_leftovers()
        repo.refresh_index()
        if progress is not None:
            progress.finish()
        return stats


def rebuild_index(repo: Repository, *, lock_timeout: float | None = None) -> int:
    """Replace every index object by one built from the pack trailers.

    The repair for a damaged or lost index: packs are self-describing (§5 of the format).
    Damaged packs are left out (``verify`` names them).  Runs under an exclusive lock: the
    new index is written before the old ones are deleted, so a crash leaves a valid index.
    """
    storage = repo.storage
    timeout = repo.lock_timeout if lock_timeout is None else lock_timeout
    with Lock(storage, exclusive=True, timeout=timeout):
        packs: dict[bytes, list[PackEntry]] = {}
        for obj in list(storage.list(PACKS_PREFIX)):
            pack_id = parse_pack_key(obj.key)
            if pack_id is None:
                continue
            try:
                packs[pack_id] = repo.read_pack_trailer(pack_id, obj.size)
            except (RepositoryError, StorageError):
                continue
        old = [o.key for o in storage.list(INDEX_PREFIX)]
        new_id = os.urandom(16)
        storage.put(index_key(new_id), [dump_index(repo.envelope, new_id, packs)])
        for key in old:
            try:
                storage.delete(key)
            except ObjectNotFound:
                pass
        repo.refresh_index()
        return len(packs)


__all__ = [
    "PruneStats",
    "RetentionPolicy",
    "VerifyReport",
    "forget",
    "prune",
    "rebuild_index",
    "verify",
]
