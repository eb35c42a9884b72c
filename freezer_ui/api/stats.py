"""Numbers for the Overview panels: usage over time, recent runs and failures, project totals.

Request-level functions, like :mod:`freezer_ui.api.freezer`: the project, user and roles come
from ``request.user``.  Where the numbers come from (docs/overview.md says more):

- **Backup records** (``backup_list``) carry what a backup stored: ``size`` (logical bytes),
  ``stored_bytes`` (bytes this generation added to the repository, after dedup and compression),
  ``new_bytes`` (logical bytes the repository did not hold yet) and ``time_stamp``.  A record
  ``available`` is a successful backup, ``error`` a failed one, ``creating`` one in progress.
- **Runs** come from ``job_run_list`` when the API layer has it (the agent's run history), and
  otherwise from the jobs' own ``job_schedule`` (the last run of each job only).

Two ways to compute, one result:

- **Embedded transport**: aggregated in SQL over the ``Backup``/``Job`` models (sums, counts,
  maxima grouped by day or project, JSON key transforms on ``doc`` that sqlite and PostgreSQL
  both support), so a page costs a fixed handful of queries whatever the number of records.
  These queries bypass the transport, so they apply its tenant rule themselves: the caller's
  project only, every project only for an admin.
- **Remote transport** (freezer-api has no aggregation): the records are read page by page
  through ``freezer.py`` and summed here, at most ``MAX_SCANNED`` of them per call.

Days are UTC days (``time_stamp // 86400``).  A time window of ``days`` days ending at ``now``
includes both edges: a failure exactly ``7 * 86400`` seconds old is "in the last 7 days".
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable, Iterator
from typing import Any

from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.exceptions import Forbidden, NotFound
from freezer_ui.api.resources import Backup, Job

DAY = 86400
PAGE = 200
# Remote mode reads records page by page; past this many a call stops reading (and says so
# with ``complete: False``) rather than keep a page waiting on a huge project.
MAX_SCANNED = 20000
RUN_STATES = ("running", "success", "fail", "aborted", "interrupted")


def _now(now: float | None) -> int:
    return int(time.time() if now is None else now)


def _iso_day(day: int) -> str:
    return datetime.datetime.fromtimestamp(day * DAY, tz=datetime.UTC).date().isoformat()


def _database(client: Any) -> str | None:
    """The Django database alias when the client is embedded (SQL possible), else None."""
    from freezer_ui.api.transports.embedded import EmbeddedTransport

    transport = client.transport
    return transport.using if isinstance(transport, EmbeddedTransport) else None


def _scan(
    list_function, request, *, all_projects=False, search=None, cap: int | None = MAX_SCANNED
) -> Iterator[Any]:
    """Every item of a ``*_list`` call, page by page, at most ``cap`` (None: no cap)."""
    offset = 0
    while cap is None or offset < cap:
        items, more = list_function(
            request, limit=PAGE, offset=offset, search=search, all_projects=all_projects
        )
        yield from items
        offset += len(items)
        if not more or not items:
            return


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


# --------------------------------------------------------------------------- SQL helpers
def _backup_rows(using: str):
    from freezer_ui import models

    return models.Backup.objects.using(using).order_by()


# What a JSON number looks like as text (sqlite and PostgreSQL both render numbers this way).
_NUMERIC = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def _meta_number(*keys: str):
    """A number from ``doc.backup_metadata``, the first key holding one (our name, then
    freezer's); NULL where the key is missing or holds something else."""
    from django.db.models import Case, FloatField, Q, When
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast, Coalesce

    # backup_metadata is free JSON in freezer-api: a record from another client may hold text
    # there.  PostgreSQL would fail the whole query casting it, so only numbers are cast.
    # Float, not integer: PostgreSQL refuses to cast the text "1.0" to bigint, and byte counts
    # stay exact in a double up to 2**53.
    casts = [
        Case(
            When(
                Q(**{f"doc__backup_metadata__{key}__regex": _NUMERIC}),
                then=Cast(KT(f"doc__backup_metadata__{key}"), FloatField()),
            ),
            default=None,
            output_field=FloatField(),
        )
        for key in keys
    ]
    return Coalesce(*casts) if len(casts) > 1 else casts[0]


def _stored():
    return _meta_number("stored_bytes", "backup_size_compressed")


def _size():
    return _meta_number("size", "backup_size_uncompressed")


# --------------------------------------------------------------------------- usage over time
def _empty_day() -> dict[str, float]:
    return {"stored_bytes": 0.0, "new_bytes": 0.0, "size": 0.0, "success": 0, "fail": 0}


def _usage_sql(using: str, project_id: str, first: int, last: int):
    from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, Q, Sum

    rows = _backup_rows(using).filter(project_id=project_id)
    ok = Q(status="available")
    before = rows.filter(ok, time_stamp__lt=first * DAY).aggregate(
        stored=Sum(_stored()), backups=Count("id")
    )
    per_day = (
        rows.filter(time_stamp__gte=first * DAY, time_stamp__lt=(last + 1) * DAY)
        .annotate(day=ExpressionWrapper(F("time_stamp") / DAY, output_field=BigIntegerField()))
        .values("day")
        .annotate(
            stored_bytes=Sum(_stored(), filter=ok),
            new_bytes=Sum(_meta_number("new_bytes"), filter=ok),
            size=Sum(_size(), filter=ok),
            success=Count("id", filter=ok),
            fail=Count("id", filter=Q(status="error")),
        )
    )
    days = {row.pop("day"): {k: v or 0 for k, v in row.items()} for row in per_day}
    any_records = bool(before["backups"] or days) or rows.exists()
    return before["stored"] or 0, days, any_records, True


def _usage_scan(backups: Iterable[Backup], first: int, last: int):
    baseline = 0.0
    days: dict[int, dict[str, float]] = {}
    seen = 0
    for backup in backups:
        seen += 1
        stamp = backup.time_stamp
        if not stamp:
            continue
        day = stamp // DAY
        available = backup.status == "available"
        if day < first:
            if available:
                baseline += _number(backup.stored_bytes)
            continue
        if day > last:
            continue
        entry = days.setdefault(day, _empty_day())
        if available:
            entry["stored_bytes"] += _number(backup.stored_bytes)
            entry["new_bytes"] += _number(backup.new_bytes)
            entry["size"] += _number(backup.size)
            entry["success"] += 1
        elif backup.status == "error":
            entry["fail"] += 1
    return baseline, days, seen > 0, seen < MAX_SCANNED


RUN_FAILED = ("fail", "interrupted")


def _runs_sql(using: str, project_id: str, first: int, last: int) -> dict[int, dict[str, int]]:
    """Finished runs per UTC day, from the agent's run history (embedded ``JobRun`` rows).

    A run is dated by when it was filed (the agent files it as it starts); every kind of run
    counts (backups, restores, ...), unlike the backup records.
    """
    from django.db.models import Count, Q
    from django.db.models.functions import TruncDate

    from freezer_ui import models

    start = datetime.datetime.fromtimestamp(first * DAY, tz=datetime.UTC)
    end = datetime.datetime.fromtimestamp((last + 1) * DAY, tz=datetime.UTC)
    rows = (
        models.JobRun.objects.using(using)
        .order_by()
        .filter(project_id=project_id, created_at__gte=start, created_at__lt=end)
        .annotate(date=TruncDate("created_at", tzinfo=datetime.UTC))
        .values("date")
        .annotate(
            runs_success=Count("id", filter=Q(status="success")),
            runs_fail=Count("id", filter=Q(status__in=RUN_FAILED)),
        )
    )
    epoch = datetime.date(1970, 1, 1)
    return {
        (row["date"] - epoch).days: {
            "runs_success": row["runs_success"],
            "runs_fail": row["runs_fail"],
        }
        for row in rows
    }


def project_usage(request, days: int = 30, *, now: float | None = None) -> dict[str, Any]:
    """The project's backups per UTC day over the last ``days`` days (today included).

    Returns ``{"days", "start", "end", "empty", "complete", "series": [...]}``; each point is
    ``{"date": "YYYY-MM-DD", "time": <epoch of the day's start>, "stored_bytes": cumulative
    bytes stored by available backups up to that day's end, "new_bytes", "size" (logical bytes
    backed up that day), "dedup_ratio" (share of that day's logical bytes already stored,
    None without backups), "success", "fail" (available and failed backup records that day),
    "runs_success", "runs_fail" (finished runs of any kind that day, from the run history;
    None where the backend keeps none, as freezer-api)}``.  ``empty`` is True when the project
    has no backup record at all, so the page can say so instead of drawing flat lines.
    """
    if not 1 <= int(days) <= 366:
        raise ValueError("days must be between 1 and 366")
    days = int(days)
    client = api_freezer.freezerclient(request)
    last = _now(now) // DAY
    first = last - days + 1
    using = _database(client)
    runs: dict[int, dict[str, int]] | None = None
    if using:
        baseline, per_day, any_records, complete = _usage_sql(
            using, client.context.project_id, first, last
        )
        runs = _runs_sql(using, client.context.project_id, first, last)
    else:
        baseline, per_day, any_records, complete = _usage_scan(
            _scan(api_freezer.backup_list, request), first, last
        )
    series = []
    stored = float(baseline)
    for day in range(first, last + 1):
        entry = {**_empty_day(), **per_day.get(day, {})}
        stored += entry["stored_bytes"]
        size, new = entry["size"], entry["new_bytes"]
        series.append(
            {
                "date": _iso_day(day),
                "time": day * DAY,
                "stored_bytes": int(stored),
                "new_bytes": int(new),
                "size": int(size),
                "dedup_ratio": round(1 - new / size, 4) if size else None,
                "success": int(entry["success"]),
                "fail": int(entry["fail"]),
                "runs_success": None if runs is None else runs.get(day, {}).get("runs_success", 0),
                "runs_fail": None if runs is None else runs.get(day, {}).get("runs_fail", 0),
            }
        )
    return {
        "days": days,
        "start": _iso_day(first),
        "end": _iso_day(last),
        "empty": not any_records,
        "complete": complete,
        "series": series,
    }


# --------------------------------------------------------------------------- failures
def _failure(backup: Backup) -> dict[str, Any]:
    meta = backup.to_dict().get("backup_metadata") or {}
    return {
        "backup_id": backup.id,
        "project_id": backup.project_id,
        "backup_name": backup.backup_name,
        "hostname": backup.hostname,
        "job_id": meta.get("job_id") or "",
        "time_stamp": backup.time_stamp,
        "error": str(meta.get("error") or ""),
    }


def recent_failures(
    request, days: int = 7, *, limit: int = 20, now: float | None = None
) -> list[dict[str, Any]]:
    """Failed backups (records with status ``error``) of the last ``days`` days, newest first.

    Each is ``{"backup_id", "project_id", "backup_name", "hostname", "job_id", "time_stamp",
    "error"}``.  The window includes its oldest second (``now - days * 86400``).
    """
    client = api_freezer.freezerclient(request)
    end = _now(now)
    start = end - int(days) * DAY
    using = _database(client)
    if using:
        rows = (
            _backup_rows(using)
            .filter(project_id=client.context.project_id, status="error")
            .filter(time_stamp__gte=start, time_stamp__lte=end)
            .order_by("-time_stamp", "id")[:limit]
        )
        failed = [Backup(row.doc) for row in rows]
    else:
        failed = [
            b
            for b in _scan(api_freezer.backup_list, request)
            if b.status == "error" and start <= b.time_stamp <= end
        ]
        failed.sort(key=lambda b: b.time_stamp, reverse=True)
    return [_failure(b) for b in failed[:limit]]


# --------------------------------------------------------------------------- runs
def _epoch(value: Any) -> int | None:
    """Seconds since the epoch from an int or an ISO date; None for "never" (-1, "", None)."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | float):
        return int(value) if value > 0 else None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp())


def _run(job_id: str, job: str, status: str, started: Any, ended: Any) -> dict[str, Any]:
    start, end = _epoch(started), _epoch(ended)
    if end is not None and start is not None and end < start:
        end = None  # the end of the previous run: this one is still going
    return {
        "job_id": job_id,
        "job": job,
        "status": status,
        "started": start,
        "ended": end,
        "duration": end - start if start is not None and end is not None else None,
    }


def runs_from_jobs(jobs: Iterable[Job], limit: int = 10) -> list[dict[str, Any]]:
    """The last run of each job, from its ``job_schedule``, newest first.

    freezer-api keeps no run history: a job document holds only its latest run (status,
    result, ``time_started``/``time_ended``).  Jobs that never ran are left out.
    """
    runs = []
    for job in jobs:
        schedule = job.job_schedule or {}
        if _epoch(schedule.get("time_started")) is None:
            continue
        if job.status == "running":
            status = "running"
        elif job.result in ("success", "fail", "aborted"):
            status = job.result
        else:
            status = job.status or ""
        runs.append(
            _run(
                job.id,
                job.description,
                status,
                schedule.get("time_started"),
                schedule.get("time_ended"),
            )
        )
    runs.sort(key=lambda run: run["started"] or 0, reverse=True)
    return runs[:limit]


def recent_runs(request, limit: int = 10, *, jobs: Iterable[Job] | None = None):
    """The project's latest runs, newest first: ``{"job_id", "job", "status", "started",
    "ended", "duration"}`` (epoch seconds; None when unknown).

    With the API layer's run history (``job_run_list``) every run counts; without it, each
    job's last run (:func:`runs_from_jobs`).  ``jobs`` are job documents the caller already
    read, so the jobs are not read twice.
    """
    job_run_list = getattr(api_freezer, "job_run_list", None)
    if job_run_list is not None:
        # freezer-api has no run history: a transport says whether it keeps one.
        supports = getattr(api_freezer.freezerclient(request).transport, "supports", None)
        if supports is None or supports("job_runs"):
            runs, _more = job_run_list(request, limit=limit)
            names = {job.id: job.description for job in jobs or ()}
            for job_id in {run.job_id for run in runs} - set(names) if jobs is None else ():
                try:
                    names[job_id] = api_freezer.job_get(request, job_id).description
                except NotFound:
                    names[job_id] = ""  # the job was deleted; its runs stay in the history
            return [
                _run(
                    run.job_id,
                    names.get(run.job_id, ""),
                    run.status,
                    getattr(run, "started", None),
                    getattr(run, "ended", None),
                )
                for run in runs
            ]
    if jobs is None:
        jobs = _scan(api_freezer.job_list, request)
    return runs_from_jobs(jobs, limit)


# --------------------------------------------------------------------------- all projects
def _totals_entry(project_id: str) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "stored_bytes": 0,
        "generations": 0,
        "last_success": None,
        "failures": 0,
        "jobs": 0,
        "running_jobs": 0,
    }


def _totals_sql(using: str, start: int, end: int) -> dict[str, dict[str, Any]]:
    from django.db.models import Count, Max, Q, Sum

    from freezer_ui import models

    ok = Q(status="available")
    totals: dict[str, dict[str, Any]] = {}
    backups = (
        _backup_rows(using)
        .values("project_id")
        .annotate(
            stored=Sum(_stored(), filter=ok),
            generations=Count("id", filter=ok),
            last_success=Max("time_stamp", filter=ok),
            failures=Count(
                "id", filter=Q(status="error", time_stamp__gte=start, time_stamp__lte=end)
            ),
        )
    )
    for row in backups:
        entry = totals.setdefault(row["project_id"], _totals_entry(row["project_id"]))
        entry.update(
            stored_bytes=int(row["stored"] or 0),
            generations=row["generations"],
            last_success=row["last_success"],
            failures=row["failures"],
        )
    jobs = (
        models.Job.objects.using(using)
        .order_by()
        .values("project_id")
        .annotate(
            jobs=Count("id"), running=Count("id", filter=Q(doc__job_schedule__status="running"))
        )
    )
    for row in jobs:
        entry = totals.setdefault(row["project_id"], _totals_entry(row["project_id"]))
        entry.update(jobs=row["jobs"], running_jobs=row["running"])
    return totals


def _totals_scan(request, start: int, end: int) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    # No cap: a total that silently stops counting would be wrong, not just late.  (freezer-api
    # 19.0.0 lists backups one project at a time, so remote mode raises before reading here.)
    for backup in _scan(api_freezer.backup_list, request, all_projects=True, cap=None):
        entry = totals.setdefault(backup.project_id, _totals_entry(backup.project_id))
        if backup.status == "available":
            entry["stored_bytes"] += int(_number(backup.stored_bytes))
            entry["generations"] += 1
            if backup.time_stamp and backup.time_stamp > (entry["last_success"] or 0):
                entry["last_success"] = backup.time_stamp
        elif backup.status == "error" and start <= backup.time_stamp <= end:
            entry["failures"] += 1
    for job in _scan(api_freezer.job_list, request, all_projects=True, cap=None):
        entry = totals.setdefault(job.project_id, _totals_entry(job.project_id))
        entry["jobs"] += 1
        entry["running_jobs"] += job.status == "running"
    return totals


def project_totals(
    request, *, failure_days: int = 7, now: float | None = None
) -> list[dict[str, Any]]:
    """Per project, every project (admin role only): ``{"project_id", "stored_bytes",
    "generations" (available backups), "last_success" (epoch of the newest available backup,
    or None), "failures" (failed backups in the last ``failure_days`` days), "jobs",
    "running_jobs"}``, most stored bytes first.

    Raises ``Forbidden`` for a non-admin, like every ``all_projects`` call.  In remote mode
    freezer-api lists backups one project at a time, so this raises what ``backup_list``
    raises there (``FreezerAPIError``, status 501).
    """
    client = api_freezer.freezerclient(request)
    if not client.context.is_admin:
        raise Forbidden("listing all projects requires the admin role")
    end = _now(now)
    start = end - int(failure_days) * DAY
    using = _database(client)
    totals = _totals_sql(using, start, end) if using else _totals_scan(request, start, end)
    return sorted(totals.values(), key=lambda e: (-e["stored_bytes"], e["project_id"]))
