"""Repository test helpers: small, fast repositories (cheap scrypt, small packs)."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freezer_ui.repository import ChunkerParams, Repository
from freezer_ui.storage import LocalStorage, Storage

PASSPHRASE = "correct horse battery staple"
# Cheap scrypt for tests (the default 2**15 costs ~0.1 s per open, multiplied by hundreds).
FAST_SCRYPT = 1 << 10
# Small chunks and packs, so a few hundred KiB exercise many packs and pack boundaries.
SMALL_CHUNKER = ChunkerParams(avg=16 << 10, min=4 << 10, max=64 << 10, seed=7)
SMALL_PACK = 1 << 16

ENCRYPTIONS = ["none", "aes-256-gcm"]


def make_repo(
    storage: Storage,
    encryption: str,
    *,
    pack_size: int = SMALL_PACK,
    chunker: ChunkerParams | None = SMALL_CHUNKER,
) -> Repository:
    passphrase = PASSPHRASE if encryption != "none" else None
    Repository.init(
        storage, passphrase, encryption, chunker=chunker, pack_size=pack_size, scrypt_n=FAST_SCRYPT
    )
    return Repository.open(storage, passphrase)


def reopen(storage: Storage, encryption: str) -> Repository:
    return Repository.open(storage, PASSPHRASE if encryption != "none" else None)


@pytest.fixture(params=ENCRYPTIONS)
def encryption(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "repo"))


@pytest.fixture
def repo(storage: LocalStorage, encryption: str) -> Repository:
    return make_repo(storage, encryption)


def semi_random(n: int, seed: int) -> bytes:
    """Half compressible, half random data: exercises both the zstd and the raw path."""
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        if rnd.random() < 0.5:
            out += rnd.randbytes(4096)
        else:
            out += bytes([rnd.randrange(4)]) * 4096
    return bytes(out[:n])


def backup_blob(repo: Repository, files: dict[str, bytes], name: str = "b", **header: Any) -> str:
    """Back up ``files`` (path -> content) as one generation; return its id."""
    with repo.writer() as w:
        items = []
        for path, data in files.items():
            refs = list(w.add_chunks(repo.cdc_chunks(io.BytesIO(data))))
            items.append({"path": path, "type": "file", "size": len(data), "chunks": refs})
        return w.commit({"backup_name": name, "engine": "test", "source": "/src", **header}, items)


def restore_blob(repo: Repository, gen_id: str) -> dict[str, bytes]:
    out = {}
    for item in repo.open_generation(gen_id).items():
        out[item["path"]] = b"".join(repo.read_chunks(bytes(c[0]) for c in item["chunks"]))
    return out


def stored_bytes(storage: Storage, prefix: str = "data/") -> int:
    return sum(o.size for o in storage.list(prefix))


def all_objects(storage: Storage) -> Iterator[str]:
    return (o.key for o in storage.list() if not o.key.startswith("locks/"))


def randbytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def os_random(n: int) -> bytes:
    return os.urandom(n)
