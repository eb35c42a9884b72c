"""Local-storage specifics: URLs, the registry, temp files, full disks, key safety."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freezer_ui.storage import (
    InvalidKey,
    LocalStorage,
    StorageError,
    StorageFull,
    UnknownStorage,
    get_storage,
    registry,
    validate_key,
)


def test_get_storage_urls(tmp_path: Path) -> None:
    s = get_storage(f"local://{tmp_path}/r1")
    assert isinstance(s, LocalStorage) and s.root == f"{tmp_path}/r1"
    s2 = get_storage(str(tmp_path / "r2"))
    assert isinstance(s2, LocalStorage) and s2.root == str(tmp_path / "r2")
    assert get_storage(s.url).root == s.root


def test_relative_plain_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = get_storage("rel/repo")
    assert isinstance(s, LocalStorage) and s.root == str(tmp_path / "rel" / "repo")


def test_unknown_scheme_fails_loudly() -> None:
    with pytest.raises(UnknownStorage, match="ftp.*known: local"):
        get_storage("ftp://example.com/x")


def test_local_url_with_host_refused() -> None:
    with pytest.raises(StorageError):
        LocalStorage.from_url("local://otherhost/x")


class _EP:
    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.value = f"thirdparty:{name}"
        self._obj = obj

    def load(self) -> Any:
        return self._obj


def test_entry_point_storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Mem(LocalStorage):
        name = "mem"

        @classmethod
        def from_url(cls, url: str, **options: Any) -> Mem:
            return cls(str(tmp_path / "mem"))

    monkeypatch.setattr(registry, "entry_points", lambda group: [_EP("mem", Mem)])
    assert isinstance(get_storage("mem://anything"), Mem)
    assert "mem" in registry.storage_classes()


def test_entry_point_duplicate_or_bad_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EP("local", LocalStorage)])
    with pytest.raises(StorageError, match="already exists"):
        registry.storage_classes()
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EP("x", object)])
    with pytest.raises(StorageError, match="not a Storage"):
        registry.storage_classes()


def test_temp_files_removed_and_never_listed(tmp_path: Path) -> None:
    s = LocalStorage(str(tmp_path / "s"))

    def chunks() -> Iterator[bytes]:
        yield b"abc"
        leftovers = [n for _, _, fs in os.walk(s.root) for n in fs]
        assert any(n.startswith(".tmp-") for n in leftovers)
        assert list(s.list()) == []
        yield b"def"

    s.put("a/k", chunks())
    names = [n for _, _, fs in os.walk(s.root) for n in fs]
    assert names == ["k"]


@given(st.text(min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_valid_keys_stay_inside_root(key: str) -> None:
    root = "/srv/store"
    try:
        validate_key(key)
    except InvalidKey:
        return
    path = os.path.normpath(os.path.join(root, *key.split("/")))
    assert path.startswith(root + "/")
    assert "\x00" not in key and "\\" not in key


def _is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    if not _is_root():
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.root
def test_enospc_is_storage_full_and_leaves_nothing(small_fs: Path) -> None:
    s = LocalStorage(str(small_fs / "store"))
    s.put("small", [b"x" * 1000])
    with pytest.raises(StorageFull):
        s.put("huge", (b"\0" * (256 << 10) for _ in range(16)))
    assert not s.exists("huge")
    names = sorted(n for _, _, fs in os.walk(s.root) for n in fs)
    assert names == ["small"], "temp file must be removed after ENOSPC"
    assert s.get_bytes("small") == b"x" * 1000
    s.put("after", [b"y" * 1000])  # space came back


def test_remove_leftovers_of_killed_puts(tmp_path: Path) -> None:
    s = LocalStorage(str(tmp_path / "s"))
    s.put("data/ab/k", [b"v"])
    old = tmp_path / "s" / "data" / "ab" / ".tmp-0123"
    young = tmp_path / "s" / "data" / ".tmp-4567"
    old.write_bytes(b"partial")
    young.write_bytes(b"partial")
    os.utime(old, (1_000_000, 1_000_000))
    assert s.remove_leftovers(older_than=3600) == 1
    assert not old.exists() and young.exists()
    assert s.get_bytes("data/ab/k") == b"v"
