"""Storage test fixtures: one factory per registered storage (borgstore style).

A storage added to ``STORAGE_TABLE`` must add a factory here; ``test_registration`` fails
otherwise.  Factories for services that are not available on the machine call
``pytest.skip`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from freezer_ui.storage import LocalStorage, Storage
from tests.storage.sshd import make_ssh_storage
from tests.storage.swiftaio import s3_storage_factory as make_s3_storage
from tests.storage.swiftaio import storage_factory as make_swift_storage


def _local(tmp_path: Path) -> Storage:
    return LocalStorage(str(tmp_path / "store"))


STORAGE_FACTORIES: dict[str, Callable[[Path], Storage]] = {
    "local": _local,
    # a real sshd / Swift all-in-one on loopback, started once per test process; s3 is the
    # same all-in-one through Swift's s3api middleware
    "ssh": make_ssh_storage,
    "swift": make_swift_storage,
    "s3": make_s3_storage,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "storage_name" in metafunc.fixturenames:
        metafunc.parametrize("storage_name", sorted(STORAGE_FACTORIES))


@pytest.fixture
def storage(storage_name: str, tmp_path: Path) -> Iterator[Storage]:
    s = STORAGE_FACTORIES[storage_name](tmp_path)
    yield s
    s.close()
