"""Generation selection (--generation / --at) and argument parsing, in process."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from freezer_ui.cli import gens
from freezer_ui.cli.common import CliError, parse_date
from freezer_ui.cli.maint import parse_duration


def _g(gid: str, iso: str, name: str = "b", host: str = "h"):
    return SimpleNamespace(
        id=gid, time=datetime.fromisoformat(iso), backup_name=name, hostname=host, stats={}
    )


class FakeRepo:
    def __init__(self, gl):
        self.gl = gl

    def generations(self):
        return list(self.gl)


REPO = FakeRepo(
    [
        _g("aaaa1111", "2026-01-01T10:00:00+00:00"),
        _g("aaaa2222", "2026-01-02T10:00:00+00:00"),
        _g("bbbb3333", "2026-01-03T10:00:00+00:00", name="other"),
    ]
)


def test_latest_and_prefixes() -> None:
    assert gens.resolve(REPO).id == "bbbb3333"
    assert gens.resolve(REPO, "latest", backup_name="b").id == "aaaa2222"
    assert gens.resolve(REPO, "bbbb").id == "bbbb3333"
    with pytest.raises(CliError, match="ambiguous"):
        gens.resolve(REPO, "aaaa")
    with pytest.raises(CliError, match="no generation 'zz'"):
        gens.resolve(REPO, "zz")
    with pytest.raises(CliError, match="no generations"):
        gens.resolve(FakeRepo([]))


def test_at_is_latest_at_or_before() -> None:
    assert gens.resolve(REPO, at="2026-01-02T10:00:00Z").id == "aaaa2222"
    assert gens.resolve(REPO, at="2026-01-02T09:59:59Z").id == "aaaa1111"
    assert gens.resolve(REPO, at="2026-01-02T11:00:00+01:00").id == "aaaa2222"
    # a bare date means the whole day (local time)
    assert gens.resolve(REPO, at="2026-01-05", backup_name="b").id == "aaaa2222"
    with pytest.raises(CliError, match="at or before"):
        gens.resolve(REPO, at="2025-12-31T00:00:00Z")


def test_parse_date_forms() -> None:
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parse_date("2026-01-02T03:04:05Z") == t.timestamp()
    assert parse_date("@1700000000") == 1700000000.0
    with pytest.raises(CliError):
        parse_date("yesterday")


def test_parse_duration() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("6 hours") == timedelta(hours=6)
    assert parse_duration("2w") == timedelta(weeks=2)
    with pytest.raises(CliError):
        parse_duration("soon")


def test_help_lists_every_command(capsys) -> None:
    from freezer_ui.cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for (
        cmd
    ) in "init backup restore generations ls cat export-tar verify forget prune stats".split():
        assert cmd in out
