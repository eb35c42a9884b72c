"""Readers for backups written by the upstream OpenStack Freezer agent (tar, rsync, rsyncv2).

    from freezer_ui.engines import legacy
    backups = legacy.discover("/srv/freezer-container")
    for g in backups[0].generations: print(g.level, g.time, g.compression, g.encrypted)
    legacy.restore("/srv/freezer-container", "myhost_mybackup", "/restore/here",
                   at="2024-05-01T12:00:00", passphrase_file="/etc/freezer/pass")

See docs/legacy.md for what is supported and how the fixtures are made with the real agent.
"""

from .discovery import Chain, Generation, LegacyBackup, discover, find_backup, parse_at
from .errors import (
    CorruptArchive,
    LegacyError,
    NoBackupFound,
    PassphraseRequired,
    PathNotFound,
    TargetExists,
    TruncatedArchive,
    UnsupportedBackup,
    WrongPassphrase,
)
from .restore import RestoreResult, restore

__all__ = [
    "Chain",
    "CorruptArchive",
    "Generation",
    "LegacyBackup",
    "LegacyError",
    "NoBackupFound",
    "PassphraseRequired",
    "PathNotFound",
    "RestoreResult",
    "TargetExists",
    "TruncatedArchive",
    "UnsupportedBackup",
    "WrongPassphrase",
    "discover",
    "find_backup",
    "parse_at",
    "restore",
]
