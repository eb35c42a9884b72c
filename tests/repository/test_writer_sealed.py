"""Writer.add_sealed: chunks sealed elsewhere (the tar backup's worker processes) are stored
once, read back like any chunk, and a chunk claimed as stored that is not is refused."""

from __future__ import annotations

import pytest

from freezer_ui.repository.crypto import BLOB_CHUNK
from freezer_ui.repository.errors import RepositoryError

from .conftest import reopen, semi_random


def _sealed(repo, data: bytes) -> tuple[bytes, bytes]:
    cid = repo.chunk_id(data)
    return cid, repo.envelope.seal(BLOB_CHUNK, cid, data)


def test_sealed_chunks_are_stored_once_and_read_back(repo, storage, encryption) -> None:
    datas = [semi_random(30_000, i) for i in range(40)]
    with repo.writer() as w:
        refs = []
        for data in datas:
            cid, blob = _sealed(repo, data)
            refs.append(w.add_sealed(cid, len(data), blob))
            # the same chunk sealed again (another worker): dropped, not stored twice
            assert w.add_sealed(cid, len(data), _sealed(repo, data)[1]) == refs[-1]
            # and claimed as stored without a blob: fine, it is
            assert w.add_sealed(cid, len(data), None) == refs[-1]
        items = [{"path": f"f{i}", "type": "file", "chunks": [list(r)]} for i, r in enumerate(refs)]
        gen = w.commit({"backup_name": "b", "engine": "test", "source": "/s"}, items)
        stats = dict(w.stats)
    assert stats["new_chunks"] == 40 and stats["chunks"] == 120
    assert stats["new_bytes"] == sum(map(len, datas))
    again = reopen(storage, encryption)
    assert again.verify().ok
    listed = [e.chunk_id for p in again.index.packs for e in again.index.packs[p]]
    assert len(listed) == len(set(listed))
    for item, data in zip(again.open_generation(gen).items(), datas, strict=True):
        assert again.read_chunk(bytes(item["chunks"][0][0])) == data


def test_claimed_but_unknown_chunk_is_refused(repo) -> None:
    data = semi_random(10_000, 1)
    with pytest.raises(RepositoryError, match="reported as stored but is not in the repository"):
        with repo.writer() as w:
            w.add_sealed(repo.chunk_id(data), len(data), None)
    assert repo.generation_ids() == []


def test_sealed_and_local_chunks_share_packs(repo, storage, encryption) -> None:
    a, b = semi_random(50_000, 2), semi_random(50_000, 3)
    with repo.writer() as w:
        ra = w.add_sealed(*(lambda c: (c[0], len(a), c[1]))(_sealed(repo, a)))
        rb = w.add_chunk(b)
        assert w.add_chunk(a) == ra  # sealed elsewhere first: deduplicated here too
        gen = w.commit(
            {"backup_name": "b", "engine": "test", "source": "/s"},
            [{"path": "a", "type": "file", "chunks": [list(ra), list(rb)]}],
        )
    again = reopen(storage, encryption)
    item = next(iter(again.open_generation(gen).items()))
    assert b"".join(again.read_chunks(bytes(c[0]) for c in item["chunks"])) == a + b
