"""RetentionPolicy.select on synthetic generation lists."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from freezer_ui.repository import GenerationInfo, RetentionPolicy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def gens(*ages_hours: float) -> list[GenerationInfo]:
    return [
        GenerationInfo.from_header(f"{i:032x}", {"time": (NOW - timedelta(hours=h)).timestamp()})
        for i, h in enumerate(ages_hours)
    ]


def kept(policy: RetentionPolicy, g: list[GenerationInfo]) -> list[int]:
    return sorted(int(x, 16) for x in policy.select(g, NOW))


def test_empty_policy_refused() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy()
    with pytest.raises(ValueError):
        RetentionPolicy(keep_last=-1)


def test_keep_last() -> None:
    assert kept(RetentionPolicy(keep_last=2), gens(5, 1, 3, 2)) == [1, 3]
    assert kept(RetentionPolicy(keep_last=0), gens(5, 1)) == []


def test_keep_daily_takes_newest_per_day() -> None:
    # two on the newest day (1h, 2h ago), one yesterday, two the day before
    g = gens(1, 2, 26, 49, 50)
    assert kept(RetentionPolicy(keep_daily=2), g) == [0, 2]
    assert kept(RetentionPolicy(keep_daily=10), g) == [0, 2, 3]


def test_keep_weekly_and_monthly() -> None:
    g = gens(1, 24 * 3, 24 * 8, 24 * 9, 24 * 40, 24 * 41)
    assert kept(RetentionPolicy(keep_weekly=2), g) == [0, 2]
    assert kept(RetentionPolicy(keep_monthly=2), g) == [0, 4]


def test_rules_combine_as_union() -> None:
    g = gens(1, 30, 24 * 40)
    assert kept(RetentionPolicy(keep_last=1, older_than=timedelta(days=2)), g) == [0, 1]
    assert kept(RetentionPolicy(older_than=timedelta(hours=2)), g) == [0]
