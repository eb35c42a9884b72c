"""``init``, ``verify``, ``forget``, ``prune`` and ``stats``: repository upkeep."""

from __future__ import annotations

import argparse
import sys

from freezer_ui.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    add_output_args,
    add_repo_args,
    emit_json,
    get_storage,
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
        choices=("aes-256-gcm", "chacha20-poly1305", "none"),
        default=None,
        help="default: aes-256-gcm with a passphrase, none without",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_init)


def register(sub: argparse._SubParsersAction) -> None:
    pass


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


__all__ = ["EXIT_ERROR", "add_output_args", "make_progress", "open_repo", "sys"]
