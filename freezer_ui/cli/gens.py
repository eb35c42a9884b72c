"""Picking generations: by id (or unique prefix), ``latest``, or latest at/before a date."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from freezer_ui.cli.common import CliError, parse_date


def gen_time(g: Any) -> float:
    """Epoch seconds of a GenerationInfo, whatever type its ``time`` has."""
    t = getattr(g, "time", None)
    if isinstance(t, datetime):
        return t.timestamp()
    if isinstance(t, (int, float)):
        return float(t) / 1e9 if t > 1e14 else float(t)  # tolerate nanoseconds
    if isinstance(t, str):
        return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    return 0.0


def gen_field(g: Any, name: str, default: Any = None) -> Any:
    v = getattr(g, name, None)
    if v is None and isinstance(getattr(g, "header", None), dict):
        v = g.header.get(name)
    return default if v is None else v


def filtered(repo: Any, backup_name: str | None = None, hostname: str | None = None) -> list[Any]:
    gens = [
        g
        for g in repo.generations()
        if (backup_name is None or gen_field(g, "backup_name") == backup_name)
        and (hostname is None or gen_field(g, "hostname") == hostname)
    ]
    gens.sort(key=gen_time)
    return gens


def resolve(
    repo: Any,
    spec: str | None = None,
    *,
    at: str | None = None,
    backup_name: str | None = None,
    hostname: str | None = None,
) -> Any:
    """The GenerationInfo named by ``spec`` (id, unique id prefix or ``latest``) or, with ``at``,
    the latest one at or before that date. Raises :class:`CliError` when there is none."""
    gens = filtered(repo, backup_name, hostname)
    if at is not None:
        limit = parse_date(at)
        before = [g for g in gens if gen_time(g) <= limit]
        if not before:
            raise CliError(f"no generation at or before {at}")
        return before[-1]
    if spec in (None, "", "latest"):
        if not gens:
            raise CliError("the repository has no generations" + _filters(backup_name, hostname))
        return gens[-1]
    exact = [g for g in gens if g.id == spec]
    if exact:
        return exact[0]
    matches = [g for g in gens if g.id.startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(f"no generation {spec!r}" + _filters(backup_name, hostname))
    raise CliError(f"generation prefix {spec!r} is ambiguous ({len(matches)} matches)")


def _filters(backup_name: str | None, hostname: str | None) -> str:
    f = [
        f"backup name {backup_name!r}" if backup_name else "",
        f"host {hostname!r}" if hostname else "",
    ]
    f = [x for x in f if x]
    return f" (for {' and '.join(f)})" if f else ""
