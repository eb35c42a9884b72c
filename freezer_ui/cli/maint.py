"""``init``, ``verify``, ``forget``, ``prune`` and ``stats``: repository upkeep."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict
from datetime import timedelta

from freezer_ui.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_output_args,
    add_repo_args,
    emit_json,
    get_storage,
    human_bytes,
    make_progress,
    open_repo,
    read_passphrase,
    repository_class,
)


def register_init(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a repository")
    add_repo_args(p)
    p.add_argument(
        "--encryption",
        choices=("aes-256-gcm", "none"),
        default=None,
        help="default: aes-256-gcm with a passphrase, none without",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_init)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check packs, index and manifests (re-hash chunks)")
    add_repo_args(p)
    p.add_argument("--sample", type=float, metavar="F", help="re-hash only fraction F of packs")
    add_output_args(p)
    p.set_defaults(func=run_verify)

    p = sub.add_parser("forget", help="remove generations by retention policy (then prune)")
    add_repo_args(p)
    for rule in ("last", "daily", "weekly", "monthly"):
        p.add_argument(f"--keep-{rule}", type=int, metavar="N")
    p.add_argument(
        "--older-than",
        metavar="AGE",
        help="forget only generations older than AGE (e.g. 30d, 12h, 2w, '6 hours')",
    )
    p.add_argument("--backup-name", metavar="NAME")
    p.add_argument("--hostname")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--prune", action="store_true", help="run prune afterwards")
    add_output_args(p)
    p.set_defaults(func=run_forget)

    p = sub.add_parser("prune", help="delete data no generation references")
    add_repo_args(p)
    add_output_args(p)
    p.set_defaults(func=run_prune)

    p = sub.add_parser("stats", help="repository size, generations, deduplication")
    add_repo_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_stats)


_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "y": 31536000, "year": 31536000, "years": 31536000,
}  # fmt: skip


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``6 hours`` (freezer's schedule_interval style)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise CliError(f"bad age {text!r} (use e.g. 30d, 12h, 2w or '6 hours')", EXIT_USAGE)
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])


def run_verify(args: argparse.Namespace) -> int:
    if args.sample is not None and not 0 < args.sample <= 1:
        raise CliError("--sample must be in (0, 1]", EXIT_USAGE)
    repo = open_repo(args)
    rep = repo.verify(sample=args.sample, progress=make_progress(args, "verify"))
    if args.json:
        d = asdict(rep)
        d["ok"] = rep.ok
        emit_json(d)
    else:
        for e in rep.errors:
            print(f"error: {e}", file=sys.stderr)
        for w in rep.warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(
            f"{'OK' if rep.ok else 'FAILED'}: {rep.packs_checked} packs "
            f"({rep.packs_sampled} re-hashed), {rep.chunks_checked} chunks, "
            f"{human_bytes(rep.bytes_checked)}, {rep.generations_checked} generations, "
            f"{len(rep.errors)} errors"
        )
    return EXIT_OK if rep.ok else EXIT_ERROR


def run_forget(args: argparse.Namespace) -> int:
    from freezer_ui.repository import RetentionPolicy

    try:
        policy = RetentionPolicy(
            keep_last=args.keep_last,
            keep_daily=args.keep_daily,
            keep_weekly=args.keep_weekly,
            keep_monthly=args.keep_monthly,
            older_than=parse_duration(args.older_than) if args.older_than else None,
        )
    except ValueError as e:
        raise CliError(
            f"{e} (give --keep-last/--keep-daily/... or --older-than)", EXIT_USAGE
        ) from None
    repo = open_repo(args)
    removed = repo.forget(
        policy, backup_name=args.backup_name, hostname=args.hostname, dry_run=args.dry_run
    )
    pruned = None
    if args.prune and not args.dry_run:
        pruned = repo.prune(progress=make_progress(args, "prune"))
    if args.json:
        emit_json(
            {
                "removed": removed,
                "dry_run": args.dry_run,
                "prune": asdict(pruned) if pruned else None,
            }
        )
    else:
        verb = "would remove" if args.dry_run else "removed"
        print(f"{verb} {len(removed)} generations" + "".join(f"\n  {g}" for g in removed))
        if pruned:
            _print_prune(pruned)
    return EXIT_OK


def _print_prune(st: object) -> None:
    d = asdict(st)
    print(
        f"prune: {d.get('packs_deleted', 0)} packs deleted, {d.get('packs_rewritten', 0)} "
        f"rewritten, {d.get('chunks_removed', 0)} chunks removed, "
        f"{human_bytes(d.get('bytes_freed', 0))} freed"
    )


def run_prune(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    st = repo.prune(progress=make_progress(args, "prune"))
    if args.json:
        emit_json(asdict(st))
    else:
        _print_prune(st)
    return EXIT_OK


def run_stats(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    gl = repo.generations()
    by_prefix: dict[str, list[int]] = {}
    for obj in repo.storage.list(""):
        top = obj.key.split("/", 1)[0]
        acc = by_prefix.setdefault(top, [0, 0])
        acc[0] += 1
        acc[1] += obj.size
    idx = repo.index
    chunk_bytes = sum(loc[3] for loc in idx.by_chunk.values())
    logical = sum(int((g.stats or {}).get("bytes_total", 0) or 0) for g in gl)
    stored = sum(v[1] for v in by_prefix.values())
    doc = {
        "id": repo.id,
        "encryption": repo.encryption,
        "format_version": repo.format_version,
        "generations": len(gl),
        "chunks": len(idx),
        "chunk_bytes": chunk_bytes,
        "logical_bytes": logical,
        "stored_bytes": stored,
        "objects": {k: {"count": v[0], "bytes": v[1]} for k, v in sorted(by_prefix.items())},
        "dedup_ratio": round(logical / chunk_bytes, 2) if chunk_bytes else None,
    }
    if args.json:
        emit_json(doc)
        return EXIT_OK
    print(f"repository {repo.id} ({repo.encryption}, format v{repo.format_version})")
    print(f"generations: {len(gl)}")
    print(f"logical size of all generations: {human_bytes(logical)}")
    print(f"unique chunks: {len(idx)} ({human_bytes(chunk_bytes)} before compression)")
    print(f"stored: {human_bytes(stored)}")
    for k, (n, b) in sorted(by_prefix.items()):
        print(f"  {k + '/':10} {n:8} objects {human_bytes(b):>12}")
    if doc["dedup_ratio"]:
        print(f"deduplication: {doc['dedup_ratio']}x")
    return EXIT_OK


def run_init(args: argparse.Namespace) -> int:
    Repository = repository_class()

    passphrase = read_passphrase(args)
    if args.encryption not in (None, "none") and not passphrase:
        raise CliError("encryption needs a passphrase (FREEZER_UI_PASSPHRASE or --passphrase-file)")
    repo = Repository.init(
        get_storage(args.repo), passphrase=passphrase, encryption=args.encryption
    )
    if args.json:
        emit_json({"id": repo.id, "encryption": repo.encryption, "url": args.repo})
    else:
        print(f"created repository {repo.id} at {args.repo} (encryption: {repo.encryption})")
    return EXIT_OK
