"""forget + prune: random sequences keep every remaining generation whole."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from freezer_ui.repository import MissingChunk, Repository, RetentionPolicy
from freezer_ui.storage import LocalStorage

from .conftest import backup_blob, make_repo, reopen, restore_blob, stored_bytes


def _files(rnd: random.Random, pool: list[bytes]) -> dict[str, bytes]:
    """A few files made of shared blocks (dedup) and fresh ones (garbage after forget)."""
    out = {}
    for i in range(rnd.randint(1, 4)):
        parts = [
            rnd.choice(pool) if rnd.random() < 0.6 else rnd.randbytes(rnd.randint(1, 40_000))
            for _ in range(rnd.randint(1, 6))
        ]
        out[f"f{i}"] = b"".join(parts)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_forget_prune_sequences(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    enc = "aes-256-gcm" if seed % 2 else "none"
    storage = LocalStorage(str(tmp_path / "r"))
    repo = make_repo(storage, enc)
    pool = [rnd.randbytes(rnd.randint(10_000, 60_000)) for _ in range(8)]
    expected: dict[str, dict[str, bytes]] = {}
    clock = 1_700_000_000.0
    for _step in range(14):
        op = rnd.choices(["backup", "forget", "prune"], weights=[5, 2, 2])[0]
        if op == "backup":
            clock += rnd.choice([600, 3600 * 5, 86400, 86400 * 8])
            files = _files(rnd, pool)
            expected[backup_blob(repo, files, name=rnd.choice(["a", "b"]), time=clock)] = files
        elif op == "forget" and expected:
            policy = rnd.choice(
                [
                    RetentionPolicy(keep_last=rnd.randint(0, 3)),
                    RetentionPolicy(keep_daily=rnd.randint(1, 3), keep_weekly=1),
                    RetentionPolicy(keep_last=1, keep_monthly=2),
                ]
            )
            for gen_id in repo.forget(policy):
                del expected[gen_id]
        else:
            reader = reopen(storage, enc)  # opened before prune, index loaded
            reader.index  # noqa: B018 - load it now
            before = stored_bytes(storage)
            stats = repo.prune(rewrite_below=rnd.choice([0.3, 0.5, 0.9]))
            assert stats.missing_chunks == 0
            assert stored_bytes(storage) <= before
            for gen_id, files in expected.items():
                assert restore_blob(reader, gen_id) == files  # old reader keeps working
        assert {g.id for g in repo.generations()} == set(expected)
        for gen_id, files in expected.items():
            assert restore_blob(reopen(storage, enc), gen_id) == files
        report = reopen(storage, enc).verify()
        assert report.ok, report.errors
    repo.forget(RetentionPolicy(keep_last=0))
    repo.prune()
    assert stored_bytes(storage) == 0
    assert reopen(storage, enc).verify().ok


def test_prune_reclaims_and_rewrites(repo: Repository, storage: LocalStorage) -> None:
    keep = {"k": random.Random(1).randbytes(200_000)}
    drop = {"d": random.Random(2).randbytes(400_000)}
    g_keep = backup_blob(repo, {**keep, **drop})
    backup_blob(repo, keep)
    repo.forget(RetentionPolicy(keep_last=1))
    before = stored_bytes(storage)
    stats = repo.prune(rewrite_below=0.99)
    assert stats.bytes_freed > 300_000 and stored_bytes(storage) < before - 300_000
    assert g_keep not in {g.id for g in repo.generations()}
    [gen] = repo.generations()
    assert restore_blob(repo, gen.id) == keep
    assert len(list(storage.list("index/"))) == 1


def test_prune_removes_orphan_packs(repo: Repository, storage: LocalStorage) -> None:
    with pytest.raises(RuntimeError):
        with repo.writer() as w:
            for i in range(10):
                w.add_chunk(random.Random(i).randbytes(30_000))
            w.flush()
            raise RuntimeError("crash")
    assert stored_bytes(storage) > 250_000
    repo.prune()
    assert stored_bytes(storage) == 0


def test_reader_after_prune_gets_clear_error(
    repo: Repository, storage: LocalStorage, encryption: str
) -> None:
    g = backup_blob(repo, {"f": random.Random(3).randbytes(100_000)})
    reader = reopen(storage, encryption)
    gen = reader.open_generation(g)
    item = next(gen.items())
    repo.forget(RetentionPolicy(keep_last=0))
    repo.prune()
    with pytest.raises(MissingChunk):
        reader.read_chunk(bytes(item["chunks"][0][0]))


def test_commit_after_parent_pruned_is_refused(repo: Repository) -> None:
    """A files-cache shortcut reusing a pruned parent's chunks must not make a broken generation."""
    g = backup_blob(repo, {"f": random.Random(4).randbytes(50_000)})
    old_item = next(repo.open_generation(g).items())
    repo.forget(RetentionPolicy(keep_last=0))
    repo.prune()
    with repo.writer() as w:
        with pytest.raises(MissingChunk):
            w.commit({"backup_name": "b"}, [old_item])
    assert repo.generations() == []


def test_older_than_policy(repo: Repository) -> None:
    import time

    now = time.time()
    old = backup_blob(repo, {"f": b"1"}, time=now - 10 * 86400)
    new = backup_blob(repo, {"f": b"2"}, time=now - 3600)
    assert repo.forget(RetentionPolicy(older_than=timedelta(days=7)), dry_run=True) == [old]
    assert {g.id for g in repo.generations()} == {old, new}
    assert repo.forget(RetentionPolicy(older_than=timedelta(days=7))) == [old]
    assert [g.id for g in repo.generations()] == [new]


def test_lost_pack_is_healed_by_next_backup(
    repo: Repository, storage: LocalStorage, encryption: str
) -> None:
    files = {"f": random.Random(5).randbytes(300_000)}
    g1 = backup_blob(repo, files)
    victim = sorted(o.key for o in storage.list("data/"))[0]
    storage.delete(victim)
    damaged = reopen(storage, encryption)
    assert not damaged.verify().ok
    with pytest.raises(MissingChunk):
        restore_blob(damaged, g1)
    # The next backup of the same data sees the lost chunks as absent and stores them again;
    # being content-addressed, they make the old generation whole again.
    backup_blob(damaged, files)
    assert restore_blob(reopen(storage, encryption), g1) == files
    damaged.prune()  # drops the stale index entries
    report = reopen(storage, encryption).verify()
    assert report.ok, report.errors
