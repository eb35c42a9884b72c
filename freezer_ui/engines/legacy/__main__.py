"""``python -m freezer_ui.engines.legacy ls|restore ...``: list/restore upstream Freezer backups.

    python -m freezer_ui.engines.legacy ls CONTAINER [--json] [--spool-dir DIR]
    python -m freezer_ui.engines.legacy restore CONTAINER BACKUP --target DIR
        [--at YYYY-MM-DDTHH:MM:SS] [--passphrase-file F] [--engine tar]
        [--path REL ...] [--no-owners] [--spool-dir DIR]
    python -m freezer_ui.engines.legacy import CONTAINER BACKUP --repo URL
        [--passphrase-file F] [--repo-passphrase-file F] [--engine tar] [--work-dir DIR]
        [--spool-dir DIR]

CONTAINER is a local directory or a storage URL (``ssh://user@host:port/path?key=...``, any
scheme of ``freezer_ui.storage``): a remote container's metadata is mirrored into a spool
directory (``--spool-dir``, default $TMPDIR) and only the data of the generations applied is
fetched (engines/legacy/remote.py). BACKUP is ``<host>_<name>`` as in the container's paths
(or the backup name alone when it is unambiguous). Dates are UTC, as freezer 19.0's
--restore-from-date. Exit status: 0 on success, 1 on any error (one line on stderr), 2 on
bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from freezer_ui.storage.base import StorageError

from .discovery import LegacyBackup, discover, find_backup
from .errors import LegacyError
from .restore import restore


class _Local:
    """A local container directory, with the same three verbs as remote.RemoteContainer."""

    def __init__(self, path: str) -> None:
        self.path = path

    def discover(self) -> list[LegacyBackup]:
        return discover(self.path)

    def restore(self, backup: LegacyBackup, target: str, **kwargs: Any) -> Any:
        return restore(self.path, backup, target, **kwargs)

    def import_backup(self, backup: LegacyBackup, repo: Any, **kwargs: Any) -> Any:
        from .importer import import_backup

        return import_backup(self.path, backup, repo, **kwargs)


@contextmanager
def _container(args: argparse.Namespace) -> Iterator[Any]:
    from .remote import RemoteContainer, is_storage_url

    if not is_storage_url(args.container):
        yield _Local(args.container)
        return
    from freezer_ui.storage import get_storage

    try:
        storage = get_storage(args.container)
    except StorageError as e:
        raise LegacyError(f"{args.container}: {e}") from e
    try:
        with RemoteContainer(storage, args.spool_dir) as rc:
            yield rc
    finally:
        storage.close()


def _ls(args: argparse.Namespace) -> int:
    with _container(args) as c:
        backups = c.discover()
    if args.json:
        doc = [
            {
                "engine": b.engine,
                "backup": b.key,
                "hostname": b.hostname,
                "backup_name": b.backup_name,
                "generations": [g.to_dict() for g in b.generations],
                "notes": b.notes,
            }
            for b in backups
        ]
        print(json.dumps(doc, indent=2))
        return 0
    if not backups:
        print(f"no Freezer backups in {args.container}")
    for b in backups:
        print(f"{b.engine}/{b.key}  (host {b.hostname!r}, name {b.backup_name!r})")
        for c in b.chains:
            for g in c.generations:
                enc = "encrypted" if g.encrypted else "clear"
                print(
                    f"  chain {c.level_zero_timestamp}  level {g.level}  "
                    f"{g.time:%Y-%m-%dT%H:%M:%SZ}  ts={g.timestamp}  "
                    f"{g.format}  {g.compression or 'none'}  {enc}  {g.size} bytes"
                )
        for n in b.notes:
            print(f"  note: {n}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    with _container(args) as c:
        backup = find_backup(c.discover(), args.backup, args.engine)
        res = c.restore(
            backup,
            args.target,
            at=args.at,
            passphrase_file=args.passphrase_file,
            warn=lambda m: print(f"warning: {m}", file=sys.stderr),
            paths=args.path,
            owners=False if args.no_owners else None,
        )
    s = res.stats
    levels = ", ".join(f"level {g.level} @ {g.time:%Y-%m-%dT%H:%M:%SZ}" for g in res.generations)
    print(f"restored {res.backup} into {res.target}: {levels}")
    print(
        f"  {s.files} files ({s.bytes} bytes), {s.dirs} dirs, {s.symlinks} symlinks, "
        f"{s.hardlinks} hard links; {s.removed} removed, {s.renamed} renamed by increments"
    )
    if s.skipped:
        print(f"  {s.skipped} members skipped (see warnings)", file=sys.stderr)
    return 0


REPO_PASSPHRASE_ENV = "FREEZER_UI_PASSPHRASE"  # as the rest of freezer-ui-agent's commands


def _import(args: argparse.Namespace) -> int:
    from freezer_ui.repository import Repository, RepositoryError
    from freezer_ui.storage.registry import get_storage

    passphrase = os.environ.get(REPO_PASSPHRASE_ENV) or None
    if args.repo_passphrase_file:
        # As the other commands read it: the whole file, one trailing newline dropped; never
        # from argv, where ps would show it.
        with open(args.repo_passphrase_file, encoding="utf-8") as f:
            passphrase = f.read().rstrip("\r\n")
    with _container(args) as c:
        backup = find_backup(c.discover(), args.backup, args.engine)
        try:
            repo = Repository.open(get_storage(args.repo), passphrase=passphrase)
        except RepositoryError as e:
            print(f"error: repository {args.repo}: {e}", file=sys.stderr)
            return 1
        res = c.import_backup(
            backup,
            repo,
            passphrase_file=args.passphrase_file,
            work_dir=args.work_dir,
            log=lambda m: print(f"  {m}"),
        )
    print(
        f"{res.backup} -> {args.repo}: {len(res.new)} generations imported, "
        f"{len(res.skipped)} already there"
    )
    for i in res.imported:
        for w in i.warnings:
            print(f"warning: {w}", file=sys.stderr)
    for n in res.notes:
        print(f"  note: {n}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m freezer_ui.engines.legacy",
        description="List, restore and import backups written by the upstream Freezer agent "
        "(tar and rsyncv2 engines; a local container directory or a storage URL such as "
        "ssh://user@host:port/path?key=F&known_hosts=F).",
    )
    container_help = "local container directory, or a storage URL (ssh://..., local://...)"
    spool_help = "where a remote container's metadata and fetched data go (default: $TMPDIR)"
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ls", help="list backups, chains and generations")
    p.add_argument("container", help=container_help)
    p.add_argument("--spool-dir", help=spool_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_ls)
    p = sub.add_parser("restore", help="restore a backup as it was at a date")
    p.add_argument("container", help=container_help)
    p.add_argument("--spool-dir", help=spool_help)
    p.add_argument("backup", help="<host>_<name>, or the backup name alone")
    p.add_argument("--target", required=True, help="new or empty directory")
    p.add_argument("--at", help="YYYY-MM-DDTHH:MM:SS in UTC, or Unix seconds (default: latest)")
    p.add_argument("--passphrase-file", help="the file given to freezer's --encrypt-pass-file")
    p.add_argument("--engine", help="engine directory (tar) when a name exists under several")
    p.add_argument(
        "--path",
        action="append",
        help="restore only this relative path (as named at --at); repeatable",
    )
    p.add_argument(
        "--no-owners", action="store_true", help="do not restore owners (default: when root)"
    )
    p.set_defaults(func=_restore)
    p = sub.add_parser(
        "import",
        help="convert a backup into generations of a freezer-ui repository (one per level)",
    )
    p.add_argument("container", help=container_help)
    p.add_argument("--spool-dir", help=spool_help)
    p.add_argument("backup", help="<host>_<name>, or the backup name alone")
    p.add_argument("--repo", required=True, help="URL (or local path) of an existing repository")
    p.add_argument("--passphrase-file", help="the file given to freezer's --encrypt-pass-file")
    p.add_argument(
        "--repo-passphrase-file",
        help=f"the repository's passphrase (default: ${REPO_PASSPHRASE_ENV})",
    )
    p.add_argument("--engine", help="engine directory (tar, rsync) when a name is ambiguous")
    p.add_argument("--work-dir", help="where each legacy state is materialised (default: $TMPDIR)")
    p.set_defaults(func=_import)
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (LegacyError, ValueError, StorageError) as e:
        # StorageError: a --repo (or container) URL whose storage fails, e.g. an ssh host
        # key refused; one line, as every other error.
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
