"""The freezer-ui repository, format v1 (docs/format.md)."""

from freezer_ui.repository.chunker import ChunkerParams
from freezer_ui.repository.errors import (
    CorruptData,
    GenerationNotFound,
    LockError,
    MissingChunk,
    RepositoryError,
    RepositoryExists,
    RepositoryNotFound,
    UnsupportedFormat,
    WrongPassphrase,
)
from freezer_ui.repository.maintenance import PruneStats, RetentionPolicy, VerifyReport
from freezer_ui.repository.repository import (
    ChunkRef,
    Generation,
    GenerationInfo,
    Repository,
)
from freezer_ui.repository.writer import Writer

__all__ = [
    "ChunkRef",
    "ChunkerParams",
    "CorruptData",
    "Generation",
    "GenerationInfo",
    "GenerationNotFound",
    "LockError",
    "MissingChunk",
    "PruneStats",
    "Repository",
    "RepositoryError",
    "RepositoryExists",
    "RepositoryNotFound",
    "RetentionPolicy",
    "UnsupportedFormat",
    "VerifyReport",
    "WrongPassphrase",
    "Writer",
]
