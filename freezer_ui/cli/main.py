"""``freezer-ui-agent``: the command-line face of the engines and the repository.

Exit codes: 0 success, 1 error (one line on stderr), 2 usage error, 3 completed with warnings
(some items skipped or possibly inconsistent; the generation or restore is otherwise complete),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from freezer_ui.cli import backup, browse, maint
from freezer_ui.cli.common import EXIT_ERROR, CliError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="freezer-ui-agent",
        description="freezer-ui backup agent: deduplicating, encrypted backups of file trees.",
        epilog="The passphrase is read from $FREEZER_UI_PASSPHRASE or --passphrase-file.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    maint.register_init(sub)
    backup.register(sub)
    browse.register(sub)
    maint.register(sub)
    _register_forwarded(sub)
    return p


def _run_agent(argv: list[str]) -> int:
    from freezer_ui.agent.cli import main as agent_main

    return agent_main(argv)


def _run_legacy(argv: list[str]) -> int:
    from freezer_ui.engines.legacy.__main__ import main as legacy_main

    return legacy_main(argv)


# ``run`` and ``legacy`` own their options and are dispatched by :func:`main` before our parser
# runs; their modules are imported only when chosen, because the agent pulls in the API client
# and jsonschema (~0.3 s), which every quick ``backup`` or ``ls`` call would otherwise pay.
_FORWARDED = {
    "run": (_run_agent, "run the backup jobs assigned to this client (long-running agent)"),
    "legacy": (_run_legacy, "list, restore or import backups of the upstream Freezer agent"),
}


def _register_forwarded(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # Listed so ``--help`` shows them; main() hands their arguments over before parsing.
    for name, (_func, help_text) in _FORWARDED.items():
        sub.add_parser(name, help=help_text, add_help=False)


def _error_message(e: BaseException) -> tuple[str, int]:
    """One line for an expected failure; ``None`` means a bug (re-raise with a traceback)."""
    from freezer_ui.engines.base import EngineError

    try:
        from freezer_ui.repository.errors import RepositoryError, WrongPassphrase
    except ImportError:  # pragma: no cover - repository package incomplete
        RepositoryError = WrongPassphrase = ()  # type: ignore[assignment,misc]
    try:
        from freezer_ui.storage.base import StorageError
    except ImportError:  # pragma: no cover
        StorageError = ()  # type: ignore[assignment,misc]

    if isinstance(e, CliError):
        return str(e), e.code
    if WrongPassphrase and isinstance(e, WrongPassphrase):
        return (str(e) if "passphrase" in str(e) else f"wrong passphrase: {e}"), EXIT_ERROR
    if isinstance(e, EngineError):
        return str(e), EXIT_ERROR
    if RepositoryError and isinstance(e, RepositoryError):
        return f"repository: {e}", EXIT_ERROR
    if StorageError and isinstance(e, StorageError):
        return f"storage: {e}", EXIT_ERROR
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}", EXIT_ERROR
    raise e


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _FORWARDED:
        # The subcommand's own parser takes the whole rest, "--help" included.
        return _FORWARDED[argv[0]][0](argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("freezer-ui-agent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as e:  # expected failures become one line; anything else is a bug
        msg, code = _error_message(e)
        print(f"freezer-ui-agent {args.command}: error: {msg}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
