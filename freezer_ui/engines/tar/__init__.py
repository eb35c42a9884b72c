"""The tar engine: file trees, deduplicated, with a files cache so unchanged files cost one lstat.

Item format (one dict per manifest item, in sorted pre-order, the source root first as ``"."``):

=============  ==============================================================================
``path``       relative POSIX path (``str``; ``bytes`` for names that are not valid UTF-8)
``type``       ``file`` ``hardlink`` ``dir`` ``symlink`` ``fifo`` ``chardev`` ``blockdev``
``mode``       permission bits (``S_IMODE``)
``uid gid``    numeric owner; ``user group`` the names at backup time (or ``None``)
``mtime_ns``   nanosecond modification time; ``atime_ns`` (files only) access time
``size``       logical size (files and hard links)
``chunks``     ``[[chunk_id, size], ...]``: the file's data (only data extents if sparse)
``sparse``     ``[[offset, length], ...]``: data extents of a sparse file; the rest are holes
``hardlink``   path of the first item with the same inode (hard links also carry ``chunks``)
``target``     symlink target
``xattrs``     ``{name: bytes}``
``rdev``       device number of device nodes
=============  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, ClassVar

from freezer_ui.engines.base import BackupResult, Engine, OverwritePolicy, RestoreResult


class TarEngine(Engine):
    """File trees. See the module docstring for the manifest item format."""

    name: ClassVar[str] = "tar"

    def __init__(self, cache_dir: str | None = None, use_cache: bool = True) -> None:
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    def backup(
        self,
        repo: Any,
        source: str,
        *,
        backup_name: str,
        hostname: str,
        excludes: Sequence[str] = (),
        one_file_system: bool = False,
        progress: Any | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> BackupResult:
        from freezer_ui.engines.tar.backup import TarBackup

        return TarBackup(
            repo,
            source,
            backup_name=backup_name,
            hostname=hostname,
            excludes=excludes,
            one_file_system=one_file_system,
            progress=progress,
            cache_dir=self.cache_dir,
            use_cache=self.use_cache,
            labels=labels,
        ).run()

    def restore(
        self,
        repo: Any,
        gen_id: str,
        target: str,
        *,
        paths: Sequence[str] | None = None,
        overwrite: OverwritePolicy = "never",
        progress: Any | None = None,
    ) -> RestoreResult:
        from freezer_ui.engines.tar.restore import TarRestore

        return TarRestore(
            repo, gen_id, target, paths=paths, overwrite=overwrite, progress=progress
        ).run()

    def export_tar(
        self,
        repo: Any,
        gen_id: str,
        out: BinaryIO,
        *,
        paths: Sequence[str] | None = None,
        progress: Any | None = None,
    ) -> dict[str, int]:
        """Write the generation (or a subtree) to ``out`` as a standard tar stream."""
        from freezer_ui.engines.tar.export import export_tar

        return export_tar(repo, gen_id, out, paths=paths, progress=progress)
