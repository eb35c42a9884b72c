"""Restore an upstream Freezer backup chain (tar, rsync v1 or rsyncv2 engine) into a directory.

Safety properties (tests/legacy checks each):
- everything is checked that can be checked before a byte is written: the chosen generations
  exist, the engine and compression are supported, a passphrase is given when needed and
  decrypts the first tar header of every generation;
- the chain is extracted into a fresh directory next to the target and renamed onto it only
  when every level was read to its end-of-archive marker and its compressor's integrity check;
  on any error that directory is removed and the target is left as it was;
- no member writes outside the target (see extract.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import rsync, rsync_v1
from .discovery import At, Generation, LegacyBackup, discover, find_backup
from .errors import (
    CorruptArchive,
    LegacyError,
    PassphraseRequired,
    PathNotFound,
    TargetExists,
    TruncatedArchive,
    UnsupportedBackup,
    WrongPassphrase,
)
from .extract import Stats, TreeWriter, _under, parse_selection, split_member_path
from .stream import COMPRESSIONS, DIGESTS, ChunkReader, plain_stream, read_passphrase_file
from .tarstream import TarReader


class Progress(Protocol):
    """The subset of freezer_ui's progress contract we report to (bytes = stored bytes read)."""

    def start(self, total_bytes: int, total_files: int) -> None: ...
    def advance(self, bytes: int = 0, files: int = 0) -> None: ...  # noqa: A002 - contract name
    def finish(self) -> None: ...


@dataclass
class RestoreResult:
    target: Path
    backup: str
    generations: list[Generation]
    stats: Stats
    notes: list[str] = field(default_factory=list)
    paths: list[str] | None = None

    @property
    def warnings(self) -> list[str]:
        return self.stats.warnings


def _check_supported(gens: list[Generation]) -> None:
    for g in gens:
        engine = g.metadata.get("engine_name", g.engine)
        if g.engine == "rsync" and engine == "rsync":
            if rsync_v1.is_v1(g):
                rsync_v1.check_supported(g)
            else:
                rsync.check_supported(g)
            continue
        if g.engine != "tar" or engine != "tar":
            raise UnsupportedBackup(
                f"{g.data_path}: engine {engine!r} is not supported (tar, rsync and rsyncv2 are)"
            )
        if (g.compression or "none") not in COMPRESSIONS:
            raise UnsupportedBackup(f"{g.data_path}: unknown compression {g.compression!r}")


def probe_digest(g: Generation, passphrase: bytes) -> str:
    """Find which EVP_BytesToKey digest decrypts ``g``; WrongPassphrase if none does.

    AES-CFB has no MAC, so a wrong key only shows as garbage: we decrypt the start, decompress
    it and require a valid first tar header. A wrong key fails the compressor's magic bytes
    (or the header checksum) at once; the chance of garbage passing both is negligible.
    """
    truncated: TruncatedArchive | None = None
    for digest in DIGESTS:
        chunks = plain_stream(g.data_path, g.compression, passphrase, digest)
        try:
            if TarReader(ChunkReader(chunks), str(g.data_path)).first_header_ok():
                return digest
        except TruncatedArchive as e:
            truncated = e
        except CorruptArchive as e:
            if "Salted__" in e.reason:
                raise
        finally:
            chunks.close()  # type: ignore[attr-defined]
    if truncated is not None:
        # A wrong key fails on the compressor's magic bytes, not by running out of input:
        # running out means the right key met a data file cut short.
        raise truncated
    raise WrongPassphrase(
        str(g.data_path), "wrong passphrase (decrypted data is not a valid archive)"
    )


_TEMP = "\0rename-temp"  # stands for GNU tar's X temporary in rename chains (never a real name)


def _renames(g: Generation, passphrase: bytes | None, digest: str | None) -> list[tuple]:
    """The directory renames one tar level records, in order, as (src parts, dst parts).

    GNU tar's incremental archives put every directory (dumpdir) member before any file, so
    reading stops at the first non-directory: the files' data is never decompressed here.
    """
    chunks = plain_stream(g.data_path, g.compression, passphrase, digest)
    out: list[tuple] = []
    try:
        for m in TarReader(ChunkReader(chunks), str(g.data_path)):
            if not m.is_dir:
                break
            entries = m.dumpdir or []
            for (code, name), nxt in zip(entries, entries[1:], strict=False):
                if code == "R" and nxt[0] == "T":
                    src = split_member_path(name) if name else [_TEMP]
                    dst = split_member_path(nxt[1]) if nxt[1] else [_TEMP]
                    if src and dst:
                        out.append((src, dst))
    finally:
        chunks.close()  # type: ignore[attr-defined]
    return out


def _selections(
    final: list[list[str]], gens: list[Generation], renames: dict[int, list[tuple]]
) -> list[list[list[str]]]:
    """The selected paths as named while each level is applied.

    Paths are given as they are named at the restore date; a directory renamed at level k was
    named differently in the levels before it, so walk the renames back from the last level.
    """
    out: list[list[list[str]]] = [final] * len(gens)
    cur = final
    for k in range(len(gens) - 1, -1, -1):
        out[k] = cur
        for src, dst in reversed(renames.get(k, [])):
            cur = [src + sel[len(dst) :] if _under(sel, dst) else sel for sel in cur]
    return out


def _umask() -> int:
    """The process umask without changing it (os.umask() would, briefly, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _prepare_target(target: Path) -> Path:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise TargetExists(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise TargetExists(f"{target}: exists and is not empty")
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def restore(
    container: str | Path,
    backup: LegacyBackup | str,
    target: str | Path,
    at: At = None,
    passphrase_file: str | Path | None = None,
    *,
    engine: str | None = None,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    paths: list[str] | None = None,
    owners: bool | None = None,
    passphrase: bytes | str | None = None,
) -> RestoreResult:
    """Restore ``backup`` (a LegacyBackup or "<host>_<name>") as it was at ``at`` into ``target``.

    ``target`` must not exist or be an empty directory. ``at``: datetime, Unix seconds or
    "YYYY-MM-DDTHH:MM:SS" (UTC); None means the latest generation. ``paths``: relative paths
    (as named at ``at``) to restore instead of everything; they keep their place under
    ``target``. ``owners``: restore owners (default: when running as root). ``passphrase``:
    the passphrase itself instead of ``passphrase_file`` (a secret store's value; like openssl's
    ``-pass file:`` only its first line counts).
    """
    selection = parse_selection(paths) if paths is not None else None
    if selection == []:
        raise ValueError("paths is empty: give at least one path, or None for everything")
    if isinstance(backup, str):
        backup = find_backup(discover(container), backup, engine)
    gens = backup.choose(at)
    _check_supported(gens)

    digests: dict[Path, str | None] = {}
    key_pass: bytes | None = None  # the passphrase as openssl's -pass file: would use it
    if any(g.encrypted for g in gens):
        if passphrase is not None:
            raw = passphrase.encode() if isinstance(passphrase, str) else passphrase
            key_pass = raw.split(b"\n", 1)[0]
        elif passphrase_file is None:
            raise PassphraseRequired(
                f"{backup.engine}/{backup.key}: the chosen generations are encrypted; "
                "give the passphrase file used with --encrypt-pass-file"
            )
        else:
            key_pass = read_passphrase_file(passphrase_file)
    rsync_keys: dict[Path, bytes] = {}
    for g in gens:
        if not g.encrypted or key_pass is None:
            digests[g.data_path] = None
            continue
        if g.engine == "rsync":
            # rsync engines key with the passphrase file's first line *including* its newline.
            lines = [key_pass + b"\n", key_pass]
            if passphrase is None and passphrase_file is not None:
                with open(passphrase_file, "rb") as f:
                    lines.insert(0, f.readline())
            keys = list(dict.fromkeys(lines))
            if rsync_v1.is_v1(g):
                rsync_keys[g.data_path] = rsync_v1.probe_passphrase(g, keys)
            else:
                rsync_keys[g.data_path] = rsync.probe_passphrase(g, keys)
            digests[g.data_path] = None
            continue
        digests[g.data_path] = probe_digest(g, key_pass)
    per_level: list[list[list[str]] | None] = [None] * len(gens)
    if selection is not None:
        renames = {
            k: _renames(g, key_pass if g.encrypted else None, digests[g.data_path])
            for k, g in enumerate(gens)
            if g.engine == "tar" and k > 0
        }
        per_level = list(_selections(selection, gens, renames))

    target = Path(target).absolute()
    parent = _prepare_target(target)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.legacy-restore-", dir=parent))
    os.chmod(work, 0o777 & ~_umask())  # the root's mode when the archive has no "./" member
    writer = TreeWriter(str(work), warn, owners=owners, selection=per_level[0])
    v1_state = rsync_v1.ChainState()
    if progress:
        progress.start(total_bytes=sum(g.size for g in gens), total_files=0)
    counter = (lambda n: progress.advance(bytes=n)) if progress else None
    try:
        for k, g in enumerate(gens):
            writer.source = str(g.data_path)
            writer.selection = per_level[k]
            if g.engine == "rsync":
                if rsync_v1.is_v1(g):
                    rsync_v1.apply(g, writer, v1_state, counter, rsync_keys.get(g.data_path))
                else:
                    rsync.apply(g, writer, counter, rsync_keys.get(g.data_path))
                continue
            chunks = plain_stream(
                g.data_path,
                g.compression,
                key_pass if g.encrypted else None,
                digests[g.data_path],
                counter,
            )
            reader = TarReader(ChunkReader(chunks), str(g.data_path))
            for member in reader:
                writer.apply(member, reader.data(member))
                if progress and member.is_file:
                    progress.advance(files=1)
            # Drain what follows the end-of-archive block (record padding) so the compressor's
            # trailer, and with it the CRC over the whole stream, is checked too.
            for _ in chunks:
                pass
            if writer.pending_links:
                # Selected hard links to files outside the selection: read this level again.
                again = plain_stream(
                    g.data_path,
                    g.compression,
                    key_pass if g.encrypted else None,
                    digests[g.data_path],
                )
                try:
                    r2 = TarReader(ChunkReader(again), str(g.data_path))
                    writer.resolve_links((m, r2.data(m)) for m in r2)
                finally:
                    again.close()  # type: ignore[attr-defined]
        if selection is not None:
            writer.selection = selection
            writer.prune()
            missing = writer.missing_selected()
            if missing:
                raise PathNotFound(
                    f"{backup.engine}/{backup.key}: not in the backup at "
                    f"{gens[-1].time:%Y-%m-%dT%H:%M:%SZ}: {', '.join(missing)}"
                )
        writer.finish()
        writer.close()
        if target.is_dir():
            target.rmdir()  # empty (checked above); rename() cannot replace it portably
        os.rename(work, target)
    except BaseException as e:
        writer.close()
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, LegacyError):
            raise LegacyError(f"restore into {target} failed: {e}") from e
        raise
    finally:
        if progress:
            progress.finish()
    return RestoreResult(
        target,
        f"{backup.engine}/{backup.key}",
        gens,
        writer.stats,
        backup.notes,
        None if selection is None else ["/".join(p) for p in selection],
    )
