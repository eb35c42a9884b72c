"""The storage contract: every storage must pass these tests (see ``base.Storage``).

Test modules subclass :class:`StorageContract`; the ``storage`` fixture (conftest) gives a
fresh, empty instance of each registered storage in turn.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from freezer_ui.storage import (
    InvalidKey,
    ObjectExists,
    ObjectNotFound,
    Storage,
    get_storage,
)

BAD_KEYS = [
    "",
    "/abs",
    "../up",
    "a/../b",
    "a/./b",
    "a//b",
    "a/",
    ".hidden",
    "a/.tmp-x",
    "a\\b",
    "a\x00b",
    "a\nb",
]


class StorageContract:
    def test_put_get_roundtrip(self, storage: Storage) -> None:
        assert storage.put("a/b/c", [b"hello ", b"world"]) == 11
        assert b"".join(storage.get("a/b/c")) == b"hello world"
        assert storage.get_bytes("a/b/c") == b"hello world"

    def test_empty_object(self, storage: Storage) -> None:
        assert storage.put("empty", []) == 0
        assert storage.get_bytes("empty") == b""
        assert storage.exists("empty")

    def test_put_accepts_memoryview_and_bytearray(self, storage: Storage) -> None:
        storage.put("k", [memoryview(b"ab"), bytearray(b"cd")])
        assert storage.get_bytes("k") == b"abcd"

    def test_large_object_streams(self, storage: Storage) -> None:
        block = bytes(range(256)) * 256  # 64 KiB
        n = storage.put("big", (block for _ in range(80)))
        assert n == 80 * len(block)
        parts = list(storage.get("big"))
        assert len(parts) > 1, "get must stream, not return one blob"
        assert b"".join(parts) == block * 80

    def test_write_once(self, storage: Storage) -> None:
        storage.put("k", [b"first"])
        with pytest.raises(ObjectExists):
            storage.put("k", [b"second"])
        assert storage.get_bytes("k") == b"first"

    def test_concurrent_put_same_key_one_wins(self, storage: Storage) -> None:
        results: list[str] = []

        def writer(i: int) -> None:
            try:
                storage.put("race", [str(i).encode() * 1000])
                results.append("ok")
            except ObjectExists:
                results.append("exists")

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count("ok") == 1
        data = storage.get_bytes("race")
        assert len(data) == 1000 and len(set(data)) == 1

    def test_failing_iterable_stores_nothing(self, storage: Storage) -> None:
        def chunks() -> Iterator[bytes]:
            yield b"partial"
            raise RuntimeError("source broke")

        with pytest.raises(RuntimeError, match="source broke"):
            storage.put("k", chunks())
        assert not storage.exists("k")
        assert list(storage.list()) == []

    def test_object_in_progress_is_invisible(self, storage: Storage) -> None:
        seen = []

        def chunks() -> Iterator[bytes]:
            yield b"x" * 100
            seen.append([o.key for o in storage.list()])
            seen.append(storage.exists("k"))
            yield b"y"

        storage.put("k", chunks())
        assert seen == [[], False]
        assert [o.key for o in storage.list()] == ["k"]

    def test_get_missing(self, storage: Storage) -> None:
        with pytest.raises(ObjectNotFound):
            storage.get("nope")  # raises at call time, before iteration
        with pytest.raises(ObjectNotFound):
            storage.get_range("nope", 0, 1)
        with pytest.raises(ObjectNotFound):
            storage.delete("nope")
        assert not storage.exists("nope")

    def test_get_range(self, storage: Storage) -> None:
        storage.put("r", [b"0123456789"])
        assert storage.get_range("r", 0, 3) == b"012"
        assert storage.get_range("r", 7, 3) == b"789"
        assert storage.get_range("r", 8, 10) == b"89"
        assert storage.get_range("r", 10, 5) == b""
        assert storage.get_range("r", 50, 5) == b""
        assert storage.get_range("r", 3, 0) == b""
        with pytest.raises(ValueError):
            storage.get_range("r", -1, 2)

    def test_list_prefix_and_sizes(self, storage: Storage) -> None:
        storage.put("data/aa/aa01", [b"x" * 5])
        storage.put("data/ab/ab02", [b"y" * 7])
        storage.put("index/i1", [b"z"])
        storage.put("config", [b"c" * 3])
        every = {(o.key, o.size) for o in storage.list()}
        assert every == {("data/aa/aa01", 5), ("data/ab/ab02", 7), ("index/i1", 1), ("config", 3)}
        assert {o.key for o in storage.list("data/")} == {"data/aa/aa01", "data/ab/ab02"}
        assert {o.key for o in storage.list("data/a")} == {"data/aa/aa01", "data/ab/ab02"}
        assert {o.key for o in storage.list("data/aa/")} == {"data/aa/aa01"}
        assert {o.key for o in storage.list("con")} == {"config"}
        assert list(storage.list("missing/")) == []

    def test_delete(self, storage: Storage) -> None:
        storage.put("d/k", [b"v"])
        storage.delete("d/k")
        assert not storage.exists("d/k")
        assert list(storage.list()) == []
        storage.put("d/k", [b"again"])  # a deleted key may be written again
        assert storage.get_bytes("d/k") == b"again"

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_invalid_keys_refused(self, storage: Storage, key: str) -> None:
        with pytest.raises(InvalidKey):
            storage.put(key, [b"x"])
        with pytest.raises(InvalidKey):
            storage.get(key)
        with pytest.raises(InvalidKey):
            storage.exists(key)
        with pytest.raises(InvalidKey):
            storage.delete(key)
        with pytest.raises(InvalidKey):
            storage.get_range(key, 0, 1)

    def test_url_reopens_same_storage(self, storage: Storage) -> None:
        storage.put("k", [b"v"])
        again = get_storage(storage.url)
        assert type(again) is type(storage)
        assert again.get_bytes("k") == b"v"

    def test_remove_leftovers_keeps_objects(self, storage: Storage) -> None:
        storage.put("a/k", [b"v"])
        assert storage.remove_leftovers(older_than=0) >= 0
        assert storage.get_bytes("a/k") == b"v"
