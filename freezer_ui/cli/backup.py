"""``backup`` and ``restore``."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from typing import Any

from freezer_ui.cli import gens
from freezer_ui.cli.common import (
    EXIT_OK,
    EXIT_WARNINGS,
    CliError,
    add_output_args,
    add_repo_args,
    emit_json,
    human_bytes,
    make_progress,
    open_repo,
)
from freezer_ui.engines.base import OVERWRITE_POLICIES, previous_totals


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="back up a directory tree as a new generation")
    add_repo_args(p)
    p.add_argument("--engine", default="tar", help="engine name (default: tar)")
    p.add_argument("--source", required=True, metavar="DIR", help="directory to back up")
    p.add_argument("--backup-name", required=True, metavar="NAME")
    p.add_argument("--hostname", default=None, help="host name recorded (default: this host)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    p.add_argument("--one-file-system", action="store_true", help="do not cross mount points")
    p.add_argument("--cache-dir", metavar="DIR", help="files cache location")
    p.add_argument("--no-cache", action="store_true", help="read every file (ignore files cache)")
    add_output_args(p, "print a JSON summary")
    p.set_defaults(func=run_backup)

    p = sub.add_parser("restore", help="restore a generation (or some paths) into a directory")
    add_repo_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--generation", metavar="ID", help="generation id, unique prefix or 'latest'")
    g.add_argument("--at", metavar="DATE", help="latest generation at or before DATE")
    g.add_argument("--latest", action="store_true", help="the latest generation (default)")
    p.add_argument("--backup-name", metavar="NAME", help="only consider generations of NAME")
    p.add_argument("--hostname", help="only consider generations of this host")
    p.add_argument("--target", required=True, metavar="DIR")
    p.add_argument("--path", action="append", default=None, metavar="P", help="restore only P")
    p.add_argument("--overwrite", choices=OVERWRITE_POLICIES, default="never")
    add_output_args(p, "print a JSON summary")
    p.set_defaults(func=run_restore)


def _engine(name: str, args: argparse.Namespace) -> Any:
    from freezer_ui.engines.registry import get_engine
    from freezer_ui.engines.tar import TarEngine

    cls = get_engine(name)
    if cls is TarEngine:
        return TarEngine(cache_dir=args.cache_dir, use_cache=not args.no_cache)
    return cls()


def _scan_totals(source: str, progress: Any, stop: threading.Event) -> None:
    """Count files and bytes for the ETA while a first backup runs (only with a progress
    bar; later runs take the previous generation's totals)."""
    files = size = 0
    stack = [source]
    while stack and not stop.is_set():
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.is_file(follow_symlinks=False):
                            size += e.stat(follow_symlinks=False).st_size
                        files += 1
                    except OSError:
                        pass
        except OSError:
            pass
    if not stop.is_set():
        progress.set_total(size, files)


def run_backup(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.source):
        raise CliError(f"source {args.source} is not a directory")
    engine = _engine(args.engine, args)
    repo = open_repo(args)
    # The chunk index is cached next to the files cache: an incremental backup then opens it
    # in milliseconds instead of parsing every index object of the repository. Kept with
    # --no-cache (which re-reads every file): the index cache is checked against the
    # repository's index objects and packs, never trusted for data, and exec'ed backup
    # workers use it to skip sealing stored chunks (without it they seal every chunk again).
    from freezer_ui.engines.filescache import default_cache_root

    repo.use_index_cache(args.cache_dir or default_cache_root())
    progress = make_progress(args, "backup")
    stop = threading.Event()
    hostname = args.hostname or socket.gethostname()
    if progress is not None:
        progress.start(None, None, label="backup")
        estimate = previous_totals(repo, args.backup_name, hostname)
        if estimate is not None:
            # the previous generation of this backup: no second walk competing with the
            # backup's own for the interpreter lock
            progress.set_total(*estimate)
        else:
            threading.Thread(
                target=_scan_totals, args=(args.source, progress, stop), daemon=True
            ).start()
    try:
        res = engine.backup(
            repo,
            args.source,
            backup_name=args.backup_name,
            hostname=hostname,
            excludes=args.exclude,
            one_file_system=args.one_file_system,
            progress=progress,
        )
    finally:
        stop.set()
    repo.save_index_cache()
    for w in [*repo.index_cache_warnings, *res.warnings]:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        d = res.to_dict()
        d["warnings_count"] = len(res.warnings)
        emit_json(d)
    else:
        print(
            f"generation {res.generation_id}: {res.files} items, {res.regular_files} files "
            f"({human_bytes(res.bytes_total)}), read {human_bytes(res.bytes_read)} "
            f"({res.files_read} files, {res.files_from_cache} unchanged), "
            f"new {human_bytes(res.bytes_new)} (stored {human_bytes(res.bytes_stored)}), "
            f"{res.duration:.2f}s" + (f", {len(res.warnings)} warnings" if res.warnings else "")
        )
    return EXIT_WARNINGS if res.warnings else EXIT_OK


def run_restore(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    g = gens.resolve(
        repo,
        args.generation,
        at=args.at,
        backup_name=args.backup_name,
        hostname=args.hostname,
    )
    engine_name = gens.gen_field(g, "engine", "tar")
    from freezer_ui.engines.registry import get_engine

    engine = get_engine(engine_name)()
    progress = make_progress(args, "restore")
    res = engine.restore(
        repo, g.id, args.target, paths=args.path, overwrite=args.overwrite, progress=progress
    )
    for r in res.rejected:
        print(f"rejected: {r}", file=sys.stderr)
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        emit_json(res.to_dict())
    else:
        print(
            f"restored generation {g.id} into {args.target}: {res.files} items, "
            f"{human_bytes(res.bytes_written)}, {len(res.skipped)} skipped (exist), "
            f"{res.duration:.2f}s"
        )
    return EXIT_WARNINGS if (res.warnings or res.rejected) else EXIT_OK
