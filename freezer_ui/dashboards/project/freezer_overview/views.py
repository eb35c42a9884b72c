import collections

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, views

from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import stats
from freezer_ui.dashboards import utils

# The overview counts jobs page by page; past this many it says "at least" instead of reading on.
MAX_COUNTED_JOBS = 2000
PAGE = 200
RECENT_BACKUPS = 5
RECENT_RUNS = 10
RECENT_FAILURES = 10
# The failures table and the summary look back this many days; the charts, CHART_DAYS.
FAILURE_DAYS = 7
CHART_DAYS = 30

RUN_STATUS_DISPLAY = {
    "running": _("Running"),
    "success": _("Succeeded"),
    "fail": _("Failed"),
    "aborted": _("Aborted"),
    "interrupted": _("Interrupted"),
}


def duration_display(seconds):
    """``95`` → ``1 min 35 s``; None → ``-``."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)d s") % {"m": minutes, "s": seconds}
    return _("%(s)d s") % {"s": seconds}


def when(stamp):
    return utils.format_datetime(utils.timestamp_to_datetime(stamp))


def usage_url():
    # Horizon's REST views are mounted under WEBROOT + "api/" and have no URL names.
    return f"{settings.WEBROOT.rstrip('/')}/api/freezer_ui/stats/usage/"


class IndexView(views.HorizonTemplateView):
    template_name = "freezer_ui/project/freezer_overview/index.html"
    page_title = _("Backup Overview")

    def count_jobs(self):
        """``(Counter of status -> jobs, jobs read, complete)``; complete is False past the cap."""
        counts, jobs, more = collections.Counter(), [], True
        while more and len(jobs) < MAX_COUNTED_JOBS:
            page, more = api_freezer.job_list(self.request, limit=PAGE, offset=len(jobs))
            counts.update(utils.job_state(job) for job in page)
            jobs.extend(page)
            if not page:
                break
        return counts, jobs, not more

    def recent_backups(self):
        # freezer-api returns backups unsorted, so the newest are picked from one large page.
        backups, more = api_freezer.backup_list(self.request, limit=PAGE, offset=0)
        backups = sorted(backups, key=lambda b: int(b.time_stamp or 0), reverse=True)
        for backup in backups:
            backup.created = when(backup.time_stamp)
        return backups[:RECENT_BACKUPS], len(backups), more

    def activity(self, jobs):
        """Runs, failures and the usage summary (the charts read the same numbers as JSON)."""
        runs = stats.recent_runs(self.request, limit=RECENT_RUNS, jobs=jobs)
        for run in runs:
            run["status_display"] = RUN_STATUS_DISPLAY.get(run["status"], run["status"] or "-")
            run["started_display"] = when(run["started"])
            run["duration_display"] = duration_display(run["duration"])
        failures = stats.recent_failures(self.request, days=FAILURE_DAYS, limit=RECENT_FAILURES)
        for failure in failures:
            failure["time_display"] = when(failure["time_stamp"])
        usage = stats.project_usage(self.request, days=CHART_DAYS)
        series = usage["series"]
        summary = {
            "stored_bytes": series[-1]["stored_bytes"] if series else 0,
            "backups": sum(point["success"] for point in series),
            "failures": sum(point["fail"] for point in series),
            "new_bytes": sum(point["new_bytes"] for point in series),
            # None where the backend keeps no run history (freezer-api).
            "runs_success": None,
            "runs_fail": None,
        }
        if series and series[0]["runs_success"] is not None:
            summary["runs_success"] = sum(point["runs_success"] for point in series)
            summary["runs_fail"] = sum(point["runs_fail"] for point in series)
        return {
            "recent_runs": runs,
            "recent_failures": failures,
            "usage_empty": usage["empty"],
            "usage_complete": usage["complete"],
            "usage_scanned": stats.MAX_SCANNED,
            "usage_summary": summary,
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            api_error=False,
            activity_error=False,
            failure_days=FAILURE_DAYS,
            chart_days=CHART_DAYS,
            usage_url=usage_url(),
        )
        try:
            counts, jobs, complete = self.count_jobs()
            backups, backup_count, more_backups = self.recent_backups()
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the backup overview."))
            context["api_error"] = True
            return context
        context.update(
            job_total=len(jobs),
            job_count_complete=complete,
            job_statuses=[
                {"status": status, "label": label, "count": counts.get(status, 0)}
                for status, label in utils.JOB_STATES
                if counts.get(status) or status in ("running", "scheduled", "completed", "stop")
            ],
            recent_backups=backups,
            backup_count=backup_count,
            more_backups=more_backups,
        )
        try:
            context.update(self.activity(jobs))
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve recent runs and usage."))
            context["activity_error"] = True
        return context
