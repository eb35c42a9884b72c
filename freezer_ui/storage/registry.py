"""The storage registry: one readable name -> class table, plus entry points.

Third-party storages register a ``Storage`` subclass in the entry-point group
``freezer_ui.storages`` (entry-point name = URL scheme).  Built-in names win; a third
party that reuses one fails loudly instead of silently shadowing it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from freezer_ui.storage.base import Storage, StorageError
from freezer_ui.storage.local import LocalStorage

ENTRY_POINT_GROUP = "freezer_ui.storages"

# name -> class, or "module:Class" for storages whose client library is imported only when
# that storage is used: paramiko, swiftclient and boto3 cost ~0.2 s at every CLI start otherwise,
# which is a tenth of an unchanged incremental backup.
STORAGE_TABLE: dict[str, type[Storage] | str] = {
    LocalStorage.name: LocalStorage,
    "ssh": "freezer_ui.storage.ssh:SSHStorage",
    "swift": "freezer_ui.storage.swift:SwiftStorage",
    "s3": "freezer_ui.storage.s3:S3Storage",
}


class UnknownStorage(StorageError, LookupError):
    """No storage is registered under that scheme."""


def storage_names() -> list[str]:
    """Names of every known storage, without importing any storage's client library."""
    return sorted(set(STORAGE_TABLE) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def builtin_class(name: str) -> type[Storage]:
    """The class of a built-in storage, imported on first use."""
    entry = STORAGE_TABLE[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(import_module(module), attr)
        STORAGE_TABLE[name] = entry
    return entry


def storage_classes() -> dict[str, type[Storage]]:
    """Every known storage: the built-in table plus entry points (duplicates raise)."""
    table = {name: builtin_class(name) for name in STORAGE_TABLE}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in table:
            raise StorageError(
                f"entry point {ep.value!r} registers storage {ep.name!r}, which already exists"
            )
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Storage)):
            raise StorageError(f"entry point {ep.value!r} is not a Storage subclass")
        table[ep.name] = cls
    return table


def get_storage(url: str, **options: Any) -> Storage:
    """Open the storage a URL names: ``local:///abs/path``, a plain path, or ``scheme://...``.

    Unknown schemes raise :class:`UnknownStorage` listing the known ones.
    """
    if "://" not in url:
        return LocalStorage.from_url(url, **options)
    scheme = url.split("://", 1)[0]
    if scheme in STORAGE_TABLE:
        return builtin_class(scheme).from_url(url, **options)
    table = storage_classes()
    try:
        cls = table[scheme]
    except KeyError:
        raise UnknownStorage(
            f"unknown storage scheme {scheme!r} in {url!r}; known: {', '.join(sorted(table))}"
        ) from None
    return cls.from_url(url, **options)
