"""Find upstream Freezer backups in a local container and choose what to restore at a date.

Layout (every Freezer ≥ 3.0 storage, see docs/legacy.md)::

    <container>/data/<engine>/<host>_<name>/<L0ts>/<level>_<ts>/data (+ engine_metadata)
    <container>/metadata/<engine>/<host>_<name>/<L0ts>/<level>_<ts>/metadata

The agent writes ``metadata`` last, so a generation exists only if its metadata does; a
``data`` without it is a failed run and is ignored (with a note, so nobody wonders where it went).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import NoBackupFound

At = datetime | int | float | str | None


@dataclass(frozen=True)
class Generation:
    """One stored backup run: a level of one chain."""

    engine: str
    key: str  # "<host>_<name>", the directory name
    hostname: str
    backup_name: str
    level_zero_timestamp: int
    level: int
    timestamp: int
    compression: str | None
    encrypted: bool
    metadata: dict[str, Any]
    data_path: Path
    engine_metadata_path: Path | None
    size: int

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    @property
    def format(self) -> str:
        """The engine that wrote it. rsync v1 and rsyncv2 share the ``rsync`` directory and
        both record ``engine_name: "rsync"``; only rsyncv2 records ``rsync_block_size``."""
        if self.engine != "rsync":
            return self.engine
        return "rsyncv2" if "rsync_block_size" in self.metadata else "rsync v1"

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "format": self.format,
            "backup": self.key,
            "hostname": self.hostname,
            "backup_name": self.backup_name,
            "chain": self.level_zero_timestamp,
            "level": self.level,
            "timestamp": self.timestamp,
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "compression": self.compression,
            "encrypted": self.encrypted,
            "size": self.size,
        }


@dataclass
class Chain:
    """A level-0 generation and the increments made on top of it."""

    level_zero_timestamp: int
    generations: list[Generation]  # sorted by (timestamp, level)


@dataclass
class LegacyBackup:
    """All chains stored under one ``<engine>/<host>_<name>``."""

    container: Path
    engine: str
    key: str
    hostname: str
    backup_name: str
    chains: list[Chain]
    notes: list[str] = field(default_factory=list)

    @property
    def generations(self) -> list[Generation]:
        return sorted(
            (g for c in self.chains for g in c.generations), key=lambda g: (g.timestamp, g.level)
        )

    def choose(self, at: At = None) -> list[Generation]:
        """The generations to apply, in order, to restore the state at ``at`` (default: latest).

        As upstream's restore-from-date means it: the newest level 0 at or before the date, then
        that chain's generations at or before the date, one per level, applied in level order.
        Upstream takes "one per level" in directory-listing order, which with --always-level can
        silently restore a stale generation; we take the newest one of each level.
        """
        limit = parse_at(at)
        zeros = [
            g for g in self.generations if g.level == 0 and (limit is None or g.timestamp <= limit)
        ]
        if not zeros:
            when = "" if limit is None else f" at or before {_fmt(limit)}"
            raise NoBackupFound(f"{self.engine}/{self.key}: no level-0 backup{when}")
        base = max(zeros, key=lambda g: g.timestamp)
        chain = next(c for c in self.chains if c.level_zero_timestamp == base.level_zero_timestamp)
        newest: dict[int, Generation] = {}
        for g in chain.generations:
            if limit is not None and g.timestamp > limit:
                continue
            if g.level not in newest or g.timestamp > newest[g.level].timestamp:
                newest[g.level] = g
        picked = []
        for level in range(max(newest) + 1):
            if level not in newest:
                # A level's parent is missing: what follows was made against data we lack.
                note = (
                    f"chain {chain.level_zero_timestamp}: level {level} missing, "
                    f"ignoring levels above {level - 1}"
                )
                if note not in self.notes:
                    self.notes.append(note)
                break
            picked.append(newest[level])
        # One level's data is a diff against the *previous* level as it was when it ran; a
        # newer generation of a lower level would make a higher one meaningless.
        for lower, upper in zip(picked, picked[1:], strict=False):
            if upper.timestamp < lower.timestamp:
                picked = picked[: picked.index(upper)]
                break
        return picked


def _fmt(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_at(at: At) -> int | None:
    """A restore date as Unix seconds; naive dates and strings are UTC, as freezer 19.0 reads."""
    if at is None:
        return None
    if isinstance(at, bool):
        raise TypeError("a date, not a bool")
    if isinstance(at, int | float):
        return int(at)
    if isinstance(at, str):
        s = at.strip()
        if s.isdigit():
            return int(s)
        s = s.replace(" ", "T")
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            at = datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(
                f"bad date {at!r}: use YYYY-MM-DDTHH:MM:SS (UTC), optionally with an offset, "
                "or Unix seconds"
            ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp())


def _split_key(key: str) -> tuple[str, str]:
    # "<host>_<name>" is ambiguous when the hostname has "_" (DNS names cannot, so split on
    # the first one); the key itself is always exact and is what lookups accept first.
    host, sep, name = key.partition("_")
    return (host, name) if sep else ("", key)


def _int_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


def _gen_name(name: str) -> tuple[int, int] | None:
    level, sep, ts = name.partition("_")
    if not sep or not level.isdigit() or not ts.isdigit():
        return None
    return int(level), int(ts)


def discover(container: str | Path) -> list[LegacyBackup]:
    """List the backups of a local Freezer container (``--storage local --container DIR``)."""
    root = Path(container)
    if not root.is_dir():
        raise NoBackupFound(f"{root}: not a directory")
    meta_root = root / "metadata"
    data_root = root / "data"
    found: dict[tuple[str, str], dict[int, list[Generation]]] = defaultdict(
        lambda: defaultdict(list)
    )
    notes: dict[tuple[str, str], list[str]] = defaultdict(list)
    seen: set[tuple[str, str, str, str]] = set()

    for engine_dir in _int_dirs(meta_root):
        for key_dir in _int_dirs(engine_dir):
            bk = (engine_dir.name, key_dir.name)
            host, name = _split_key(key_dir.name)
            for l0_dir in _int_dirs(key_dir):
                if not l0_dir.name.isdigit():
                    notes[bk].append(f"{l0_dir}: not a chain directory, ignored")
                    continue
                for gen_dir in _int_dirs(l0_dir):
                    parsed = _gen_name(gen_dir.name)
                    rel = gen_dir.relative_to(meta_root)
                    if parsed is None:
                        notes[bk].append(f"{gen_dir}: not a generation directory, ignored")
                        continue
                    seen.add((engine_dir.name, key_dir.name, l0_dir.name, gen_dir.name))
                    meta_file = gen_dir / "metadata"
                    data_file = data_root / rel / "data"
                    if not meta_file.is_file():
                        notes[bk].append(f"{gen_dir}: no metadata file, ignored")
                        continue
                    try:
                        meta = json.loads(meta_file.read_text().splitlines()[0])
                        if not isinstance(meta, dict):
                            raise ValueError("not an object")
                    except (ValueError, IndexError, UnicodeDecodeError) as e:
                        notes[bk].append(f"{meta_file}: unreadable metadata ({e}), ignored")
                        continue
                    if not data_file.is_file():
                        notes[bk].append(f"{gen_dir}: metadata without data, ignored")
                        continue
                    level, ts = parsed
                    em = data_root / rel / "engine_metadata"
                    found[bk][int(l0_dir.name)].append(
                        Generation(
                            engine=engine_dir.name,
                            key=key_dir.name,
                            hostname=host,
                            backup_name=name,
                            level_zero_timestamp=int(l0_dir.name),
                            level=level,
                            timestamp=ts,
                            compression=meta.get("compression"),
                            encrypted=bool(meta.get("encryption")),
                            metadata=meta,
                            data_path=data_file,
                            engine_metadata_path=em if em.is_file() else None,
                            size=data_file.stat().st_size,
                        )
                    )

    # Data written by runs that never wrote their metadata: failed or killed runs.
    for engine_dir in _int_dirs(data_root):
        for key_dir in _int_dirs(engine_dir):
            for l0_dir in _int_dirs(key_dir):
                for gen_dir in _int_dirs(l0_dir):
                    ident = (engine_dir.name, key_dir.name, l0_dir.name, gen_dir.name)
                    if ident not in seen:
                        notes[(engine_dir.name, key_dir.name)].append(
                            f"{gen_dir}: data without metadata (a failed or interrupted run), "
                            "ignored"
                        )

    backups = []
    for bk in sorted(set(found) | set(notes)):
        engine, key = bk
        host, name = _split_key(key)
        chains = [
            Chain(l0, sorted(gens, key=lambda g: (g.timestamp, g.level)))
            for l0, gens in sorted(found.get(bk, {}).items())
        ]
        backups.append(LegacyBackup(root, engine, key, host, name, chains, notes.get(bk, [])))
    return backups


def find_backup(backups: list[LegacyBackup], name: str, engine: str | None = None) -> LegacyBackup:
    """Pick one backup by ``<host>_<name>`` (exact), or by backup name alone when unambiguous."""
    cands = [b for b in backups if engine in (None, b.engine)]
    exact = [b for b in cands if b.key == name]
    if not exact:
        exact = [b for b in cands if b.backup_name == name]
    if not exact:
        known = ", ".join(f"{b.engine}/{b.key}" for b in cands) or "none"
        raise NoBackupFound(f"no backup named {name!r} (found: {known})")
    if len(exact) > 1:
        listed = ", ".join(f"{b.engine}/{b.key}" for b in exact)
        raise NoBackupFound(f"{name!r} is ambiguous: {listed}; give <host>_<name> and --engine")
    return exact[0]
