"""Convert an upstream Freezer backup into generations of our repository format.

Every legacy generation becomes one generation of ours, in time order, each logically full: the
tree as a restore at that generation's date gives it (its whole chain applied). Ours then
deduplicates what the levels share and browses any of them without replaying a chain.

How: each legacy state is restored (``restore()``, with all its checks) into a private
temporary directory next to nothing else, backed up from there with our tar engine, and the
directory removed before the next one. The header of the generation says where it came from:

* ``time`` / ``time_ns``: the legacy generation's timestamp (not the import's), so listings and
  retention see the backup's real age;
* ``hostname`` / ``backup_name``: the legacy ones; ``source``: ``freezer-legacy:<engine>/<key>``;
* ``labels``: ``origin=freezer-legacy``, ``legacy_engine``, ``legacy_backup`` (``<host>_<name>``),
  ``legacy_chain`` (its level-0 timestamp), ``legacy_level``, ``legacy_timestamp``.

Idempotent: a legacy generation whose (engine, backup, timestamp) labels are already in the
repository is skipped, so an interrupted import is simply run again.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .discovery import Generation, LegacyBackup, discover, find_backup
from .restore import restore

ORIGIN = "freezer-legacy"


@dataclass
class Imported:
    legacy: Generation
    generation_id: str | None  # None: already imported before (skipped)
    files: int = 0
    bytes: int = 0
    bytes_new: int = 0  # what the repository did not hold yet
    warnings: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    backup: str
    imported: list[Imported]
    notes: list[str] = field(default_factory=list)

    @property
    def new(self) -> list[Imported]:
        return [i for i in self.imported if i.generation_id is not None]

    @property
    def skipped(self) -> list[Imported]:
        return [i for i in self.imported if i.generation_id is None]


def labels_for(g: Generation) -> dict[str, str]:
    return {
        "origin": ORIGIN,
        "legacy_engine": g.engine,
        "legacy_backup": g.key,
        "legacy_chain": str(g.level_zero_timestamp),
        "legacy_level": str(g.level),
        "legacy_timestamp": str(g.timestamp),
    }


def imported_timestamps(repo: Any, engine: str, key: str) -> dict[int, str]:
    """legacy timestamp → our generation id, for what an earlier import already wrote."""
    out: dict[int, str] = {}
    for info in repo.generations():
        lb = info.labels
        if (
            lb.get("origin") == ORIGIN
            and lb.get("legacy_engine") == engine
            and lb.get("legacy_backup") == key
            and lb.get("legacy_timestamp", "").isdigit()
        ):
            out[int(lb["legacy_timestamp"])] = info.id
    return out


class _HeaderRepo:
    """Our repository, except that the generation its writers commit carries ``updates`` in
    its header: the tar engine stamps the time of the run, an import wants the legacy one."""

    def __init__(self, repo: Any, updates: Mapping[str, Any]) -> None:
        self._repo = repo
        self._updates = dict(updates)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)

    def writer(self, *args: Any, **kwargs: Any) -> _HeaderWriter:
        return _HeaderWriter(self._repo.writer(*args, **kwargs), self._updates)


class _HeaderWriter:
    def __init__(self, writer: Any, updates: dict[str, Any]) -> None:
        self._w = writer
        self._updates = updates

    def __enter__(self) -> _HeaderWriter:
        self._w.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._w.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._w, name)

    def commit(self, header: dict[str, Any], items: Iterable[dict[str, Any]]) -> str:
        header.update(self._updates)
        return self._w.commit(header, items)


def import_backup(
    container: str | Path,
    backup: LegacyBackup | str,
    repo: Any,
    *,
    passphrase_file: str | Path | None = None,
    passphrase: bytes | str | None = None,
    engine: str | None = None,
    work_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ImportResult:
    """Import every generation of ``backup`` not yet in ``repo`` (an open Repository).

    ``work_dir``: where the temporary trees are materialised (default: the system temp dir);
    it needs room for the largest legacy state. ``labels``: added to each generation's own
    (e.g. the agent's ``project_id``, which browsing checks).
    """
    from freezer_ui.engines.tar import TarEngine

    if isinstance(backup, str):
        backup = find_backup(discover(container), backup, engine)
    say = log or (lambda _m: None)
    done = imported_timestamps(repo, backup.engine, backup.key)
    result = ImportResult(f"{backup.engine}/{backup.key}", [], list(backup.notes))
    for g in backup.generations:
        if g.timestamp in done:
            result.imported.append(Imported(g, None))
            continue
        chain = backup.choose(g.timestamp)
        if chain[-1] is not g:
            # Not the state of any restore date (e.g. a level made against a lower level that
            # a newer generation replaced): nothing faithful to import for it.
            note = f"level {g.level} at {g.timestamp}: not restorable by date, not imported"
            result.notes.append(note)
            say(note)
            continue
        tmp = Path(tempfile.mkdtemp(prefix="freezer-legacy-import-", dir=work_dir))
        try:
            tree = tmp / "tree"
            res = restore(
                container,
                backup,
                tree,
                at=g.timestamp,
                passphrase_file=passphrase_file,
                passphrase=passphrase,
            )
            header = {
                "time": float(g.timestamp),
                "time_ns": g.timestamp * 1_000_000_000,
                "source": f"{ORIGIN}:{backup.engine}/{backup.key}",
            }
            br = TarEngine(use_cache=False).backup(
                _HeaderRepo(repo, header),
                str(tree),
                backup_name=backup.backup_name,
                hostname=backup.hostname,
                labels={**(labels or {}), **labels_for(g)},
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        item = Imported(
            g,
            br.generation_id,
            res.stats.files,
            res.stats.bytes,
            br.bytes_new,
            res.warnings + br.warnings,
        )
        result.imported.append(item)
        say(
            f"imported level {g.level} at {g.time:%Y-%m-%dT%H:%M:%SZ} as {br.generation_id} "
            f"({res.stats.files} files, {res.stats.bytes} bytes, {br.bytes_new} new)"
        )
    return result
