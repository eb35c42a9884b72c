"""Backup engines. Use :func:`freezer_ui.engines.registry.get_engine` to pick one by name."""

from freezer_ui.engines.base import (
    BackupResult,
    Engine,
    EngineError,
    RestoreResult,
    UnknownEngine,
)

__all__ = ["BackupResult", "Engine", "EngineError", "RestoreResult", "UnknownEngine"]
