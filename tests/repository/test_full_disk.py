"""A full disk: StorageFull, nothing half-visible, and the repository stays usable."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from freezer_ui.repository import RetentionPolicy
from freezer_ui.storage import LocalStorage, StorageFull

from .conftest import ENCRYPTIONS, backup_blob, make_repo, reopen, restore_blob

pytestmark = pytest.mark.root


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("enc", ENCRYPTIONS)
def test_full_disk(tmpfs: Path, enc: str) -> None:
    storage = LocalStorage(str(tmpfs / "repo"))
    repo = make_repo(storage, enc, pack_size=1 << 18)
    small = {"s": random.Random(1).randbytes(100_000)}
    g_small = backup_blob(repo, small)
    with pytest.raises(StorageFull):
        backup_blob(repo, {"big": random.Random(2).randbytes(12 << 20)})
    leftovers = [n for _, _, fs in os.walk(storage.root) for n in fs if n.startswith(".")]
    assert leftovers == [], "temp files must be removed"
    again = reopen(storage, enc)
    assert [g.id for g in again.generations()] == [g_small]
    report = again.verify()
    assert report.ok, report.errors
    assert restore_blob(again, g_small) == small
    # prune frees what the failed backup left; then backups work again
    again.forget(RetentionPolicy(keep_last=1))
    again.prune()
    g2 = backup_blob(again, {"next": random.Random(3).randbytes(1 << 20)})
    assert restore_blob(reopen(storage, enc), g2)["next"] == random.Random(3).randbytes(1 << 20)
    assert reopen(storage, enc).verify().ok
