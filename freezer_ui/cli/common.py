"""Shared CLI plumbing: repository opening, passphrase, progress bar, output and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_WARNINGS = 3  # the work completed, but some items were skipped or may be inconsistent

PASSPHRASE_ENV = "FREEZER_UI_PASSPHRASE"


class CliError(Exception):
    """An error reported as one line on stderr with a non-zero exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def add_repo_args(p: argparse.ArgumentParser) -> None:
    env_repo = os.environ.get("FREEZER_UI_REPO")
    p.add_argument(
        "--repo",
        required=not env_repo,
        default=env_repo,
        metavar="URL",
        help="repository URL (local:///path or a plain path; default: $FREEZER_UI_REPO)",
    )
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help=f"read the passphrase from FILE (default: ${PASSPHRASE_ENV})",
    )


def add_output_args(p: argparse.ArgumentParser, json_help: str = "machine-readable output") -> None:
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def read_passphrase(args: argparse.Namespace) -> str | None:
    """The passphrase comes from a file or the environment, never from argv (visible in ps)."""
    path = getattr(args, "passphrase_file", None)
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except OSError as e:
            raise CliError(f"cannot read passphrase file {path}: {e.strerror}") from None
    return os.environ.get(PASSPHRASE_ENV) or None


def get_storage(url: str) -> Any:
    from freezer_ui.storage import get_storage as _get

    try:
        return _get(url)
    except Exception as e:
        raise CliError(f"bad repository URL {url!r}: {e}") from None


def repository_class() -> Any:
    try:
        from freezer_ui.repository import Repository
    except ImportError:  # the package's __init__ may not re-export it
        from freezer_ui.repository.repository import Repository
    return Repository


def open_repo(args: argparse.Namespace) -> Any:
    Repository = repository_class()

    return Repository.open(get_storage(args.repo), passphrase=read_passphrase(args))


def want_progress(args: argparse.Namespace) -> bool:
    return (
        not getattr(args, "no_progress", False)
        and not getattr(args, "json", False)
        and sys.stderr.isatty()
    )


class TqdmRenderer:
    """Renders a :class:`freezer_ui.progress.Progress` on stderr with tqdm (files, bytes, rate,
    ETA). Updates are throttled by Progress itself (``interval``)."""

    def __init__(self, desc: str) -> None:
        from tqdm import tqdm

        # A terminal that reports no size (a pty nobody sized: `script`, some CI and serial
        # consoles) makes tqdm draw nothing (0 rows: every bar is "below the screen"), so
        # a fixed size there.
        try:
            sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
        except (OSError, ValueError):
            sized = False
        self.bar = tqdm(
            desc=desc,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            dynamic_ncols=sized,
            ncols=None if sized else 100,
            nrows=None if sized else 24,
            leave=True,
        )

    def __call__(self, snap: Any) -> None:
        bar = self.bar
        if snap.bytes_total is not None and bar.total != snap.bytes_total:
            bar.total = snap.bytes_total
        bar.n = snap.bytes_done
        files = f"{snap.files_done}" + (f"/{snap.files_total}" if snap.files_total else "")
        bar.set_postfix_str(f"{files} files", refresh=False)
        bar.refresh()
        if snap.finished:
            bar.close()


def make_progress(args: argparse.Namespace, desc: str) -> Any | None:
    if not want_progress(args):
        return None
    from freezer_ui.progress import Progress

    return Progress(TqdmRenderer(desc), interval=0.2)


def emit_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=True, default=_json_default)
    sys.stdout.write("\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, datetime):
        return o.isoformat()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(o)
    return str(o)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def parse_date(text: str) -> float:
    """``--at`` values: ISO 8601 date or date-time (local time unless an offset is given), or
    ``@<epoch seconds>``. Returns epoch seconds; a bare date means the end of that day."""
    t = text.strip()
    if t.startswith("@"):
        try:
            return float(t[1:])
        except ValueError:
            raise CliError(f"bad date {text!r}", EXIT_USAGE) from None
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"bad date {text!r} (use ISO 8601, e.g. 2026-11-26 or 2026-11-26T06:00:00Z)",
            EXIT_USAGE,
        ) from None
    if len(t) == 10:  # a bare date: "at or before" that day means up to its end
        dt = dt.replace(hour=23, minute=59, second=59, microsecond=999999)
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()


def fmt_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
