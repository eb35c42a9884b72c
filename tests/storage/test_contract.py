"""Run the storage contract over every registered storage, and check the registration."""

from __future__ import annotations

from freezer_ui.storage import STORAGE_TABLE, storage_classes
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
    for name, cls in STORAGE_TABLE.items():
        assert cls.name == name
