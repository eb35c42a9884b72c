"""Storages: write-once object stores the repository is written into (see base.Storage)."""

from freezer_ui.storage.base import (
    InvalidKey,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    validate_key,
)
from freezer_ui.storage.local import LocalStorage
from freezer_ui.storage.registry import (
    STORAGE_TABLE,
    UnknownStorage,
    get_storage,
    storage_classes,
)

__all__ = [
    "STORAGE_TABLE",
    "InvalidKey",
    "LocalStorage",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "Storage",
    "StorageError",
    "StorageFull",
    "UnknownStorage",
    "get_storage",
    "storage_classes",
    "validate_key",
]
