"""Engine test fixtures: a real repository on local storage (small chunks, cheap scrypt)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freezer_ui.engines.tar import TarEngine
from freezer_ui.repository import ChunkerParams, Repository
from freezer_ui.storage import LocalStorage

# Small chunks so a few hundred KiB span many chunks (CDC paths, sparse extents across chunks).
SMALL_CHUNKER = ChunkerParams(avg=16 << 10, min=4 << 10, max=64 << 10, seed=3)
IS_ROOT = os.geteuid() == 0


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    storage = LocalStorage(str(tmp_path / "repo"))
    Repository.init(storage, None, "none", chunker=SMALL_CHUNKER, pack_size=1 << 20)
    return Repository.open(storage)


@pytest.fixture
def engine(tmp_path: Path) -> TarEngine:
    return TarEngine(cache_dir=str(tmp_path / "cache"))


def backup(engine: TarEngine, repo: Repository, src: str, **kw):
    kw.setdefault("backup_name", "test")
    kw.setdefault("hostname", "testhost")
    return engine.backup(repo, src, **kw)
