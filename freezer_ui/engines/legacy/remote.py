"""Upstream Freezer containers kept on any storage (ssh, swift, s3, a local one...).

Every Freezer ≥ 3.0 storage lays a container out the same way (docs/legacy.md): small
``metadata/...`` objects and large ``data/...`` and ``engine_metadata`` objects. The readers of
this package work on a local directory, so a remote container is read through a **spool**, a
private local directory shaped like the container:

* :meth:`RemoteContainer.discover` lists the storage once, copies every ``metadata/`` object
  (a few hundred bytes each) and puts an *empty placeholder* where each ``data/`` object is, so
  the local discovery sees exactly what it would see on the server (a data object without its
  metadata is still noted as a failed run). The sizes reported are the stored objects' sizes.
* :meth:`RemoteContainer.restore` and :meth:`RemoteContainer.import_backup` fetch only the
  ``data`` and ``engine_metadata`` objects of the generations they will apply, streamed to
  disk, run the local reader, and empty the placeholders again afterwards, whatever happened.

On S3, freezer 19.0.0's own s3 storage never completes a backup: it uploads ``.../data`` (one
multipart object) and then fails before writing ``engine_metadata`` and ``metadata``
(tests/legacy/remote_fixtures/s3-tar-gzip).  Discovery reports such objects as the failed runs
they are; a complete container copied to a bucket (every Freezer storage lays one out alike)
reads like any other, with ``s3://BUCKET/PREFIX?endpoint=...`` and the AWS credential chain.

A placeholder never passes for data: an unfetched one is empty, which the readers reject as a
truncated archive. The spool needs room for the largest chain restored (for an import, for
every chain imported), plus what the local reader itself needs.

    with RemoteContainer(get_storage("ssh://backup@nas/srv/freezer?key=...")) as rc:
        backups = rc.discover()
        rc.restore(find_backup(backups, "host_name"), "/restore/here", at="2024-05-01T12:00:00")
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from freezer_ui.storage.base import Storage, StorageError, validate_key

from .discovery import At, Chain, Generation, LegacyBackup, discover, find_backup
from .errors import LegacyError
from .restore import RestoreResult, restore

# The agent writes each metadata object as one JSON line of a few hundred bytes.
MAX_METADATA = 1 << 20


class RemoteContainer:
    """A Freezer container on ``storage`` (rooted at the container), read through a spool."""

    def __init__(self, storage: Storage, spool_dir: str | Path | None = None) -> None:
        self.storage = storage
        if spool_dir is not None:
            os.makedirs(spool_dir, exist_ok=True)
        self.spool = Path(tempfile.mkdtemp(prefix="freezer-legacy-spool-", dir=spool_dir))
        self._sizes: dict[str, int] = {}  # data-side key -> stored size
        # ".../data" key -> its segment keys, in order (Swift layout, see _note_segments)
        self._segments: dict[str, list[str]] = {}
        self._fetched: set[str] = set()

    def __enter__(self) -> RemoteContainer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Remove the spool (the storage stays open: it is the caller's)."""
        shutil.rmtree(self.spool, ignore_errors=True)

    def _where(self) -> str:
        # The URL without its query: an ssh URL's names the operator's key and known_hosts
        # files, and these messages reach tenant-visible run logs.
        return self.storage.url.split("?", 1)[0].rstrip("/")

    def _local(self, key: str) -> Path:
        # validate_key refuses "..", absolute and dot names: whatever the server lists, a key
        # cannot name anything outside the spool.
        return self.spool.joinpath(*validate_key(key).split("/"))

    def _key(self, path: Path) -> str:
        return path.relative_to(self.spool).as_posix()

    # ------------------------------------------------------------------ discovery

    def discover(self) -> list[LegacyBackup]:
        """The container's backups, as :func:`discovery.discover` reports a local one."""
        too_big: dict[str, int] = {}
        try:
            for obj in self.storage.list("metadata/"):
                dest = self._local(obj.key)
                if obj.size > MAX_METADATA:
                    # The agent writes a one-line JSON document; anything this large is not
                    # one, and copying it could fill the spool's disk.
                    too_big[obj.key] = obj.size
                    continue
                if dest.is_file() and dest.stat().st_size == obj.size:
                    continue  # metadata objects are written once: a second look re-uses it
                self._download(obj.key, dest)
            segments: dict[str, list[tuple[str, int]]] = {}
            for obj in self.storage.list("data/"):
                head, sep, tail = obj.key.rpartition("/segments/")
                if sep and tail.isdigit():
                    segments.setdefault(f"{head}/data", []).append((obj.key, obj.size))
                    continue
                dest = self._local(obj.key)
                self._sizes[obj.key] = obj.size
                if obj.key not in self._fetched:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.touch()
            self._note_segments(segments)
        except StorageError as e:
            raise LegacyError(f"{self._where()}: cannot read the container: {e}") from e
        backups = [self._remote_view(b) for b in discover(self.spool)]
        where = self._where()
        for key, size in too_big.items():
            parts = key.split("/")  # metadata/<engine>/<host>_<name>/...
            note = f"{where}/{key}: {size} bytes, not a Freezer metadata file, ignored"
            engine, bkey = (parts[1], parts[2]) if len(parts) > 3 else ("", key)
            owner = next((b for b in backups if (b.engine, b.key) == (engine, bkey)), None)
            if owner is None:
                # As discovery lists a backup that has only notes (failed runs).
                host, _, name = bkey.partition("_")
                owner = LegacyBackup(self.spool, engine, bkey, host, name, [], [])
                backups.append(owner)
            owner.notes.append(note)
        return backups

    def _note_segments(self, segments: dict[str, list[tuple[str, int]]]) -> None:
        """Swift layout: freezer's swift storage uploads a level's stream as
        ``<gen>/segments/00000000``, ``00000001``... and writes ``<gen>/data`` as a zero-byte
        Dynamic Large Object manifest naming them.  The stream is the segments joined in name
        order; reading them ourselves (not through the manifest) works on any storage the
        objects were copied to, and gives the real size for the listing."""
        for data_key, parts in segments.items():
            if data_key not in self._sizes or self._sizes[data_key] != 0:
                # No manifest, or a non-empty "data" beside them: not the Swift layout, so the
                # segments are left alone and "data" is read as it is.
                continue
            parts.sort(key=lambda kv: int(kv[0].rsplit("/", 1)[1]))
            self._segments[data_key] = [k for k, _ in parts]
            self._sizes[data_key] = sum(n for _, n in parts)

    def _remote_view(self, b: LegacyBackup) -> LegacyBackup:
        """``b`` with the stored sizes (the placeholders are empty) and notes naming the
        storage instead of the spool."""
        chains = [
            Chain(
                c.level_zero_timestamp,
                [
                    dataclasses.replace(g, size=self._sizes.get(self._key(g.data_path), g.size))
                    for g in c.generations
                ],
            )
            for c in b.chains
        ]
        where = self._where()
        notes = [n.replace(str(self.spool), where) for n in b.notes]
        return dataclasses.replace(b, chains=chains, notes=notes)

    def find(self, name: str, engine: str | None = None) -> LegacyBackup:
        return find_backup(self.discover(), name, engine)

    # ------------------------------------------------------------------ fetching

    def _download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        try:
            with open(part, "wb") as f:
                for source in self._segments.get(key) or [key]:
                    for block in self.storage.get(source):
                        f.write(block)
            os.replace(part, dest)
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    @contextmanager
    def fetched(self, generations: Iterable[Generation]) -> Iterator[list[str]]:
        """Download the data (and engine_metadata) objects of ``generations`` into the spool
        for the duration of the ``with``; yields the keys fetched."""
        keys: list[str] = []
        for g in generations:
            for p in (g.data_path, g.engine_metadata_path):
                if p is not None and self._key(p) not in keys:
                    keys.append(self._key(p))
        try:
            for key in keys:
                try:
                    self._download(key, self._local(key))
                except StorageError as e:
                    raise LegacyError(f"{self._where()}: cannot fetch {key}: {e}") from e
                self._fetched.add(key)
                stored = self._sizes.get(key)
                got = self._local(key).stat().st_size
                if stored is not None and got != stored:
                    raise LegacyError(
                        f"{self._where()}: {key} changed while being read "
                        f"({got} bytes fetched, {stored} listed)"
                    )
            yield keys
        finally:
            for key in keys:
                self._fetched.discard(key)
                try:
                    # Back to an empty placeholder: the data leaves the disk, discovery still
                    # sees the object.
                    with open(self._local(key), "wb"):
                        pass
                except OSError:
                    pass

    # ------------------------------------------------------------------ restore and import

    def restore(
        self,
        backup: LegacyBackup | str,
        target: str | Path,
        at: At = None,
        passphrase_file: str | Path | None = None,
        *,
        engine: str | None = None,
        **kwargs: Any,
    ) -> RestoreResult:
        """:func:`restore.restore` for this container, fetching only the chain it applies."""
        if isinstance(backup, str):
            backup = self.find(backup, engine)
        with self.fetched(backup.choose(at)):
            return restore(
                self.spool, backup, target, at=at, passphrase_file=passphrase_file, **kwargs
            )

    def import_backup(
        self, backup: LegacyBackup | str, repo: Any, *, engine: str | None = None, **kwargs: Any
    ) -> Any:
        """:func:`importer.import_backup` for this container, fetching only the chains of the
        generations not yet in ``repo``."""
        from .importer import import_backup, imported_timestamps

        if isinstance(backup, str):
            backup = self.find(backup, engine)
        done = imported_timestamps(repo, backup.engine, backup.key)
        needed: dict[Path, Generation] = {}
        for g in backup.generations:
            if g.timestamp in done:
                continue
            chain = backup.choose(g.timestamp)
            if chain[-1] is g:
                needed.update((c.data_path, c) for c in chain)
        with self.fetched(needed.values()):
            return import_backup(self.spool, backup, repo, **kwargs)


def is_storage_url(container: str) -> bool:
    """Whether a CLI/API container argument names a storage URL rather than a local path."""
    return "://" in container
