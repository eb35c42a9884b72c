"""Round trips, dedup, keys and the commit rules."""

from __future__ import annotations

import io
import os

import pytest

from freezer_ui.repository import (
    ChunkRef,
    GenerationNotFound,
    MissingChunk,
    Repository,
    RepositoryExists,
    RepositoryNotFound,
    UnsupportedFormat,
    WrongPassphrase,
)
from freezer_ui.repository.crypto import dump_checked, load_checked
from freezer_ui.repository.repository import CONFIG_MAGIC
from freezer_ui.storage import LocalStorage, ObjectNotFound, Storage

from .conftest import (
    FAST_SCRYPT,
    PASSPHRASE,
    backup_blob,
    make_repo,
    reopen,
    restore_blob,
    semi_random,
    stored_bytes,
)


def test_roundtrip(repo: Repository, storage: LocalStorage, encryption: str) -> None:
    files = {"a": semi_random(300_000, 1), "b": b"", "c": b"tiny", "d": os.urandom(200_000)}
    gen_id = backup_blob(repo, files, hostname="h1", parent=None)
    again = reopen(storage, encryption)
    assert again.encrypted == (encryption != "none")
    assert again.id == repo.id and again.format_version == 1
    assert restore_blob(again, gen_id) == files
    [info] = again.generations()
    assert (info.id, info.hostname, info.backup_name, info.engine, info.source) == (
        gen_id,
        "h1",
        "b",
        "test",
        "/src",
    )
    assert info.stats["bytes"] == sum(len(v) for v in files.values())
    assert info.stats["items"] == 4
    assert again.verify().ok


def test_encrypted_repo_hides_plaintext(storage: LocalStorage) -> None:
    repo = make_repo(storage, "aes-256-gcm")
    secret = b"TOP-SECRET-MARKER " * 5000
    backup_blob(repo, {"secret-file-name": secret})
    for key in (o.key for o in storage.list()):
        raw = storage.get_bytes(key)
        assert b"TOP-SECRET-MARKER" not in raw
        assert b"secret-file-name" not in raw


def test_dedup_same_data_stored_once(repo: Repository, storage: LocalStorage) -> None:
    data = os.urandom(500_000)
    g1 = backup_blob(repo, {"f": data})
    after_first = stored_bytes(storage)
    g2 = backup_blob(repo, {"f": data, "copy": data})
    assert stored_bytes(storage) - after_first < 10_000  # only the new item-stream chunk
    assert restore_blob(repo, g2) == {"f": data, "copy": data}
    assert repo.open_generation(g1).info.stats["new_bytes"] == len(data)
    assert repo.open_generation(g2).info.stats["new_bytes"] == 0


def test_dedup_within_one_session(repo: Repository) -> None:
    block = os.urandom(50_000)
    with repo.writer() as w:
        r1 = w.add_chunk(block)
        r2 = w.add_chunk(memoryview(block))
        assert r1 == r2 == ChunkRef(repo.chunk_id(block), len(block))
        assert w.known(r1.id)
        w.commit({"backup_name": "x"}, [{"path": "p", "chunks": [r1, r2]}])
        assert w.stats["new_chunks"] == 1 and w.stats["chunks"] == 2


def test_many_items_span_several_item_chunks(repo: Repository) -> None:
    items = [
        {"path": f"dir/file-{i:06d}", "type": "file", "mode": 0o644, "mtime_ns": i}
        for i in range(30_000)
    ]
    with repo.writer() as w:
        gen_id = w.commit({"backup_name": "meta"}, iter(items))
    gen = repo.open_generation(gen_id)
    assert len(gen.item_chunks) > 3
    assert list(gen.items()) == items
    # unchanged metadata dedups across generations
    with repo.writer() as w:
        w.commit({"backup_name": "meta"}, iter(items))
        assert w.stats["new_chunks"] == 0


def test_chunkers(repo: Repository) -> None:
    data = semi_random(1_000_000, 3)
    chunks = list(repo.cdc_chunks(io.BytesIO(data)))
    assert b"".join(chunks) == data and len(chunks) > 5
    assert chunks == list(repo.cdc_chunks(io.BytesIO(data)))  # deterministic
    fixed = list(repo.fixed_chunks(io.BytesIO(data), 100_000))
    assert [len(c) for c in fixed] == [100_000] * 10
    # an edit in the middle changes few CDC chunks
    edited = data[:500_000] + b"INSERT" + data[500_000:]
    new = set(repo.cdc_chunks(io.BytesIO(edited))) - set(chunks)
    assert len(new) <= 3


def test_default_chunker_average_about_one_mib(tmp_path: object) -> None:
    repo = make_repo(LocalStorage(f"{tmp_path}/r"), "none", chunker=None, pack_size=32 << 20)
    data = os.urandom(48 << 20)
    sizes = [len(c) for c in repo.cdc_chunks(io.BytesIO(data))]
    avg = sum(sizes) / len(sizes)
    assert (768 << 10) < avg < (2 << 20)
    assert min(sizes[:-1]) >= 256 << 10 and max(sizes) <= 4 << 20


def test_init_twice_and_missing(storage: LocalStorage, tmp_path: object) -> None:
    make_repo(storage, "none")
    with pytest.raises(RepositoryExists):
        Repository.init(storage)
    with pytest.raises(RepositoryNotFound):
        Repository.open(LocalStorage(f"{tmp_path}/empty"))


class CountingStorage(LocalStorage):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.read: list[str] = []

    def get(self, key: str):  # type: ignore[no-untyped-def]
        self.read.append(key)
        return super().get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self.read.append(key)
        return super().get_range(key, offset, length)


def test_wrong_passphrase_before_anything_is_read(tmp_path: object) -> None:
    storage = CountingStorage(f"{tmp_path}/r")
    repo = make_repo(storage, "aes-256-gcm")
    backup_blob(repo, {"f": b"data" * 1000})
    storage.read.clear()
    with pytest.raises(WrongPassphrase):
        Repository.open(storage, "wrong")
    assert set(storage.read) <= {"config", "keys/default"}
    with pytest.raises(WrongPassphrase):
        Repository.open(storage, None)
    assert Repository.open(storage, PASSPHRASE).encrypted


def test_encryption_needs_passphrase(storage: LocalStorage) -> None:
    with pytest.raises(Exception, match="passphrase"):
        Repository.init(storage, None, "aes-256-gcm")
    assert not storage.exists("config")


def test_newer_format_is_refused(storage: LocalStorage) -> None:
    make_repo(storage, "none")
    _, config = load_checked(CONFIG_MAGIC, 1, storage.get_bytes("config"), "config")
    config["version"] = 2
    storage.delete("config")
    storage.put("config", [dump_checked(CONFIG_MAGIC, 2, config)])
    with pytest.raises(UnsupportedFormat):
        Repository.open(storage)


def test_commit_refuses_unknown_chunk(repo: Repository) -> None:
    with repo.writer() as w:
        with pytest.raises(MissingChunk):
            w.commit({"backup_name": "x"}, [{"path": "p", "chunks": [[b"\x01" * 32, 10]]}])
    assert repo.generations() == []


def test_items_may_use_hex_ids(repo: Repository) -> None:
    with repo.writer() as w:
        ref = w.add_chunk(b"hello")
        gen_id = w.commit(
            {"backup_name": "x"}, [{"path": "p", "chunks": [[ref.id.hex(), ref.size]]}]
        )
    assert repo.verify().ok
    item = next(repo.open_generation(gen_id).items())
    assert repo.read_chunk(bytes.fromhex(item["chunks"][0][0])) == b"hello"


def test_killed_session_without_commit_leaves_no_generation(
    repo: Repository, storage: Storage
) -> None:
    with pytest.raises(RuntimeError):
        with repo.writer() as w:
            for i in range(20):
                w.add_chunk(os.urandom(20_000) + bytes([i]))
            raise RuntimeError("engine crashed")
    assert repo.generations() == []
    assert repo.verify().ok
    assert not list(storage.list("locks/"))


def test_generation_not_found(repo: Repository) -> None:
    with pytest.raises(GenerationNotFound):
        repo.open_generation("0" * 32)
    with pytest.raises(GenerationNotFound):
        repo.open_generation("../config")


def test_read_missing_chunk(repo: Repository) -> None:
    with pytest.raises(MissingChunk):
        repo.read_chunk(b"\x00" * 32)


def test_header_is_kept(repo: Repository) -> None:
    with repo.writer() as w:
        gen_id = w.commit(
            {
                "backup_name": "n",
                "engine": "tar",
                "source": "/s",
                "parent": "p" * 32,
                "time": 1_700_000_000.5,
                "stats": {"files": 3},
                "custom": {"k": [1, 2]},
            },
            [],
        )
    info = repo.open_generation(gen_id).info
    assert info.parent == "p" * 32 and info.time.timestamp() == 1_700_000_000.5
    assert info.stats["files"] == 3 and "new_bytes" in info.stats
    assert info.header["custom"] == {"k": [1, 2]}


def test_scrypt_cost_recorded(storage: LocalStorage) -> None:
    Repository.init(storage, "pw", scrypt_n=FAST_SCRYPT)
    assert Repository.open(storage, "pw").encrypted
    with pytest.raises(ObjectNotFound):
        storage.get_bytes("keys/other")


def test_compression_only_when_it_shrinks(repo: Repository) -> None:
    noise = os.urandom(600_000)
    zeros = bytes(600_000)
    with repo.writer() as w:
        w.add_chunk(noise)
        w.flush()
        noise_stored = w.stats["stored_bytes"]
        w.add_chunk(zeros)
        w.flush()
        zeros_stored = w.stats["stored_bytes"] - noise_stored
    assert len(noise) < noise_stored <= len(noise) + 64  # raw plus envelope overhead
    assert zeros_stored < 1000
    assert repo.read_chunk(repo.chunk_id(noise)) == noise
    assert repo.read_chunk(repo.chunk_id(zeros)) == zeros


def test_a_chunk_stream_stopped_early_never_waits_for_reads_in_flight(tmp_path) -> None:
    """Closing ``read_chunks`` after the first chunk returns at once, while later reads are
    still blocked in the storage: an abandoned stream may be finalized by the garbage
    collector inside another thread's locked code, where waiting for its threads deadlocks."""
    import threading
    import time

    class Gated(LocalStorage):
        gate = threading.Event()
        calls = 0

        def get_range(self, key, offset, length):
            Gated.calls += 1
            if Gated.calls > 1:
                assert Gated.gate.wait(30)
            return super().get_range(key, offset, length)

    storage = Gated(str(tmp_path / "repo"))
    repo = make_repo(storage, "none")
    with repo.writer() as w:
        ids = [w.add_chunk(os.urandom(5000) + bytes([i])).id for i in range(6)]
        w.flush()
    stream = Repository.open(storage).read_chunks(ids)
    try:
        assert len(next(stream)) == 5001
        t0 = time.monotonic()
        stream.close()  # reads 2..6 are queued or blocked on the gate
        assert time.monotonic() - t0 < 5
    finally:
        Gated.gate.set()
