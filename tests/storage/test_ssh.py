"""The ssh storage against a real OpenSSH server on loopback (tests/storage/sshd.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from freezer_ui.storage import STORAGE_TABLE, Storage
from tests.storage.contract import StorageContract
from tests.storage.sshd import make_ssh_storage


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    from freezer_ui.storage.ssh import SSHStorage

    # The contract reopens storage.url through get_storage(); until "ssh" is in the registry's
    # table (its owner adds it), the fixture puts it there for the test's duration.
    monkeypatch.setitem(STORAGE_TABLE, "ssh", SSHStorage)
    s = make_ssh_storage(tmp_path)
    yield s
    s.close()


class TestSSHContract(StorageContract):
    pass
