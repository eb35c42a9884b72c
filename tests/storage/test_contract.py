"""Run the storage contract over every registered storage, and check the registration."""

from __future__ import annotations

from freezer_ui.storage import STORAGE_TABLE, storage_classes
from freezer_ui.storage.registry import builtin_class, storage_names
from tests.storage.conftest import STORAGE_FACTORIES
from tests.storage.contract import StorageContract


class TestEveryStorage(StorageContract):
    pass


def test_every_registered_storage_has_a_contract_factory() -> None:
    assert set(storage_classes()) <= set(STORAGE_FACTORIES), (
        "a registered storage has no factory in tests/storage/conftest.py: "
        "it would escape the contract suite"
    )


def test_table_names_match_classes() -> None:
    for name in STORAGE_TABLE:
        assert builtin_class(name).name == name


def test_names_known_without_importing_client_libraries() -> None:
    assert {"local", "ssh", "swift", "s3"} <= set(storage_names())
