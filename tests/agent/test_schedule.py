"""Schedule computation: intervals, start/end dates, cron fields, continuous, one-shot."""

from datetime import datetime, timezone

import pytest

from freezer_ui.agent import schedule as s

UTC = timezone.utc


def at(*args):
    return datetime(*args, tzinfo=UTC)


def ts(dt):
    return int(dt.timestamp())


NOW = at(2026, 11, 26, 10, 30, 0)


def test_no_schedule_runs_once_at_once():
    assert s.next_run({}, NOW) == NOW
    assert s.next_run({"time_started": ts(NOW)}, NOW) is None
    assert not s.is_recurring({})


def test_interval_first_run_at_once_then_after_interval():
    schedule = {"schedule_interval": "6 hours", "time_started": -1}
    assert s.next_run(schedule, NOW) == NOW
    schedule["time_started"] = ts(at(2026, 11, 26, 9, 0, 0))
    assert s.next_run(schedule, NOW) == at(2026, 11, 26, 15, 0, 0)
    assert s.is_recurring(schedule)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("30 minutes", at(2026, 11, 26, 9, 30)),
        ("1 days", at(2026, 11, 27, 9, 0)),
        ("2 weeks", at(2026, 12, 10, 9, 0)),
        ("1 months", at(2026, 12, 26, 9, 0)),
        ("10 seconds", at(2026, 11, 26, 9, 0, 10)),
        ("1 hour", at(2026, 11, 26, 10, 0)),
    ],
)
def test_interval_units(text, expected):
    schedule = {"schedule_interval": text, "time_started": ts(at(2026, 11, 26, 9, 0))}
    assert s.next_run(schedule, NOW) == expected


def test_months_clamp_to_month_end():
    assert s.add_interval(at(2026, 1, 31), 1, "months") == at(2026, 2, 28)
    assert s.add_interval(at(2026, 11, 30), 3, "months") == at(2027, 2, 28)


def test_start_date_delays_first_run_and_later_runs():
    schedule = {"schedule_interval": "1 hours", "schedule_start_date": "2026-11-27T08:00:00"}
    assert s.next_run(schedule, NOW) == at(2026, 11, 27, 8, 0)
    schedule["schedule_start_date"] = "2026-11-26T08:00:00+02:00"  # 06:00 UTC: past
    assert s.next_run(schedule, NOW) == at(2026, 11, 26, 6, 0)  # in the past: due now


def test_end_date_stops_the_schedule():
    schedule = {
        "schedule_interval": "1 days",
        "schedule_end_date": "2026-11-26T12:00:00Z",
        "time_started": ts(at(2026, 11, 26, 9, 0)),
    }
    assert s.next_run(schedule, NOW) is None
    schedule["schedule_end_date"] = "2026-11-28T00:00:00Z"
    assert s.next_run(schedule, NOW) == at(2026, 11, 27, 9, 0)


def test_continuous_runs_right_after_the_previous_end():
    schedule = {"schedule_interval": "continuous"}
    assert s.next_run(schedule, NOW) == NOW
    schedule.update(
        time_started=ts(at(2026, 11, 26, 10, 0)), time_ended=ts(at(2026, 11, 26, 10, 5))
    )
    assert s.next_run(schedule, NOW) == at(2026, 11, 26, 10, 5)


def test_cron_hour_means_that_hour_on_the_dot():
    schedule = {"schedule_hour": "3", "time_started": ts(at(2026, 11, 26, 3, 0))}
    assert s.next_run(schedule, NOW) == at(2026, 11, 27, 3, 0, 0)


def test_cron_first_run_after_creation():
    created = at(2026, 11, 26, 9, 1)
    schedule = {"schedule_minute": "*/15", "time_created": ts(created), "time_started": -1}
    assert s.next_run(schedule, NOW) == at(2026, 11, 26, 9, 15)  # due (past)


def test_cron_day_of_week_names_and_ranges():
    # 2026-11-26 is a Thursday.
    schedule = {
        "schedule_day_of_week": "mon-wed,sat",
        "schedule_hour": "22",
        "time_started": ts(NOW),
    }
    assert s.next_run(schedule, NOW) == at(2026, 11, 28, 22, 0)  # Saturday
    schedule["schedule_day_of_week"] = "0"
    assert s.next_run(schedule, NOW) == at(2026, 11, 30, 22, 0)  # Monday


def test_cron_month_day_and_steps():
    schedule = {"schedule_month": "1,7", "schedule_day": "1", "time_started": ts(NOW)}
    assert s.next_run(schedule, NOW) == at(2027, 1, 1, 0, 0)
    schedule = {"schedule_hour": "1-23/6", "schedule_minute": "30", "time_started": ts(NOW)}
    assert s.next_run(schedule, NOW) == at(2026, 11, 26, 13, 30)


def test_cron_impossible_date_never_runs():
    assert s.next_run({"schedule_month": "2", "schedule_day": "30", "time_started": 0}, NOW) is None


def test_one_shot_schedule_date():
    schedule = {"schedule_date": "2026-11-26T12:00:00"}
    assert s.next_run(schedule, NOW) == at(2026, 11, 26, 12, 0)
    schedule["time_started"] = ts(at(2026, 11, 26, 12, 0, 1))
    assert s.next_run(schedule, NOW) is None


@pytest.mark.parametrize(
    "schedule",
    [
        {"schedule_interval": "6 fortnights"},
        {"schedule_interval": "0 hours"},
        {"schedule_hour": "25"},
        {"schedule_day_of_week": "someday"},
        {"schedule_minute": "*/0"},
        {"schedule_start_date": "tomorrow"},
    ],
)
def test_bad_schedules_are_refused_with_a_reason(schedule):
    with pytest.raises(s.ScheduleError) as err:
        s.validate(schedule)
    assert str(err.value)
