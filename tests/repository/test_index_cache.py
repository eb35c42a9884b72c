"""The local chunk-index cache: same answers as the index objects, never trusted when stale
or damaged, and no per-chunk Python objects when it is used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freezer_ui.repository import Repository
from freezer_ui.repository.repository import INDEX_CACHE_NAME
from freezer_ui.storage import LocalStorage

from .conftest import backup_blob, make_repo, reopen, restore_blob, semi_random


def _cached(storage: LocalStorage, encryption: str, cache: Path) -> Repository:
    r = reopen(storage, encryption)
    r.use_index_cache(cache)
    return r


def _full(storage: LocalStorage, encryption: str) -> dict[bytes, tuple]:
    idx = reopen(storage, encryption).refresh_index()
    return {cid: idx.by_chunk[cid] for cid in idx.by_chunk}


def _answers(repo: Repository) -> dict[bytes, tuple]:
    idx = repo.index
    return {cid: idx.by_chunk[cid] for cid in idx.by_chunk}


def _cache_file(repo: Repository, cache: Path) -> Path:
    return cache / repo.id / INDEX_CACHE_NAME


def test_cache_gives_the_same_index_and_holds_no_chunk_objects(
    repo: Repository, storage: LocalStorage, encryption: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    backup_blob(repo, {"a": semi_random(300_000, 1), "b": semi_random(200_000, 2)})
    backup_blob(repo, {"c": semi_random(250_000, 3)})
    expected = _full(storage, encryption)

    first = _cached(storage, encryption, cache)
    assert _answers(first) == expected  # built from the index objects, then written
    assert _cache_file(first, cache).exists()

    second = _cached(storage, encryption, cache)
    idx = second.refresh_index()
    assert idx.cached is not None
    # nothing per chunk in Python objects: the chunks are searched in the file
    assert len(idx.by_chunk.overlay) == 0 and idx.cached.n == len(expected)
    assert _answers(second) == expected
    assert all(cid in idx.by_chunk for cid in expected)
    assert os.urandom(32) not in idx.by_chunk and b"short" not in idx.by_chunk
    full = reopen(storage, encryption).refresh_index()
    assert set(idx.packs) == set(full.packs)
    assert all(sorted(idx.packs[p]) == sorted(full.packs[p]) for p in full.packs)


def test_index_written_by_another_client_is_merged(
    repo: Repository, storage: LocalStorage, encryption: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    backup_blob(repo, {"a": semi_random(300_000, 1)})
    _cached(storage, encryption, cache).refresh_index()  # cache built
    # another client (no cache) writes new packs and a new index object
    other = reopen(storage, encryption)
    gen = backup_blob(other, {"n": semi_random(200_000, 9)})

    mine = _cached(storage, encryption, cache)
    assert _answers(mine) == _full(storage, encryption)
    assert restore_blob(mine, gen)["n"] == semi_random(200_000, 9)
    # this session's own backup, then the save: the next open needs no index parsing
    backup_blob(mine, {"m": semi_random(150_000, 11)})
    mine.save_index_cache()
    again = _cached(storage, encryption, cache)
    idx = again.refresh_index()
    assert len(idx.by_chunk.overlay) == 0
    assert _answers(again) == _full(storage, encryption)


def test_save_leaves_out_packs_no_index_object_lists(
    repo: Repository, storage: LocalStorage, encryption: str, tmp_path: Path
) -> None:
    """Packs of an aborted session are orphans: the cache must not claim them, or the next
    writer would not adopt (index) them and a prune would delete chunks in use."""
    cache = tmp_path / "cache"
    _cached(storage, encryption, cache).refresh_index()  # an empty cache
    backup_blob(reopen(storage, encryption), {"o": semi_random(100_000, 4)})  # another client
    mine = _cached(storage, encryption, cache)
    mine.refresh_index()  # parses the other client's index object: something to save
    with pytest.raises(RuntimeError), mine.writer() as w:
        w.add_chunk(semi_random(100_000, 5))
        w._submit_batch()
        while w._pending:
            w._drain_one()
        w._flush_pack()
        while w._uploads:
            w._wait_upload()
        raise RuntimeError("killed")
    mine.save_index_cache()
    idx = _cached(storage, encryption, cache).refresh_index()
    assert len(idx.by_chunk.overlay) == 0  # saved: the other client's chunks are cached
    assert set(idx.by_chunk) == set(_full(storage, encryption))  # the orphan's are not ...
    with reopen(storage, encryption).writer() as w:  # ... so the next writer adopts it
        assert w.stats["reused_packs"] == 1


def test_prune_invalidates_the_cache(
    repo: Repository, storage: LocalStorage, encryption: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    old = backup_blob(repo, {"a": semi_random(300_000, 1)}, name="x")
    keep = backup_blob(repo, {"b": semi_random(300_000, 2)}, name="y")
    before = _cached(storage, encryption, cache)
    assert len(before.refresh_index()) == len(_full(storage, encryption))
    maint = reopen(storage, encryption)
    maint.storage.delete(f"manifests/{old}")  # as forget does
    maint.prune()

    after = _cached(storage, encryption, cache)
    expected = _full(storage, encryption)
    assert _answers(after) == expected  # the removed chunks are no longer known
    assert len(after.index) < len(before.index)
    assert restore_blob(after, keep)["b"] == semi_random(300_000, 2)


def test_missing_pack_invalidates_the_cache(
    repo: Repository, storage: LocalStorage, encryption: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    backup_blob(repo, {"a": semi_random(300_000, 1)})
    _cached(storage, encryption, cache).refresh_index()
    pack = next(o.key for o in storage.list("data/"))
    storage.delete(pack)
    idx = _cached(storage, encryption, cache).refresh_index()
    assert {cid: idx.by_chunk[cid] for cid in idx.by_chunk} == _full(storage, encryption)
    assert idx.missing_packs  # the lost pack is reported, its chunks are not claimed


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_cache_is_discarded_with_a_warning(
    repo: Repository,
    storage: LocalStorage,
    encryption: str,
    tmp_path: Path,
    damage: str,
) -> None:
    cache = tmp_path / "cache"
    backup_blob(repo, {"a": semi_random(300_000, 1)})
    first = _cached(storage, encryption, cache)
    first.refresh_index()
    path = _cache_file(first, cache)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10  # inside the chunk ids
    elif damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"\x00" * len(data))
    path.write_bytes(bytes(data))

    again = _cached(storage, encryption, cache)
    assert _answers(again) == _full(storage, encryption)
    assert any("discarded" in w for w in again.index_cache_warnings)
    # rebuilt: the next open trusts it again, without a warning
    third = _cached(storage, encryption, cache)
    assert third.refresh_index().cached is not None and not third.index_cache_warnings


def test_cache_of_another_repository_is_not_trusted(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    s1, s2 = LocalStorage(str(tmp_path / "r1")), LocalStorage(str(tmp_path / "r2"))
    r1, r2 = make_repo(s1, "none"), make_repo(s2, "none")
    backup_blob(r1, {"a": semi_random(200_000, 1)})
    c1 = _cached(s1, "none", cache)
    c1.refresh_index()
    target = _cache_file(r2, cache)
    target.parent.mkdir(parents=True)
    target.write_bytes(_cache_file(c1, cache).read_bytes())

    c2 = _cached(s2, "none", cache)
    assert len(c2.refresh_index()) == 0
    assert any("another repository" in w for w in c2.index_cache_warnings)
