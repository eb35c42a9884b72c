import collections

from django.utils.translation import gettext_lazy as _
from horizon import exceptions, views

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils

# The overview counts jobs page by page; past this many it says "at least" instead of reading on.
MAX_COUNTED_JOBS = 2000
PAGE = 200
RECENT_BACKUPS = 5


class IndexView(views.HorizonTemplateView):
    template_name = "freezer_ui/project/freezer_overview/index.html"
    page_title = _("Backup Overview")

    def count_jobs(self):
        """``(Counter of status -> jobs, total, complete)``; complete is False past the cap."""
        counts, offset, more = collections.Counter(), 0, True
        while more and offset < MAX_COUNTED_JOBS:
            jobs, more = api_freezer.job_list(self.request, limit=PAGE, offset=offset)
            counts.update(utils.job_state(job) for job in jobs)
            offset += len(jobs)
            if not jobs:
                break
        return counts, offset, not more

    def recent_backups(self):
        # freezer-api returns backups unsorted, so the newest are picked from one large page.
        backups, more = api_freezer.backup_list(self.request, limit=PAGE, offset=0)
        backups = sorted(backups, key=lambda b: int(b.time_stamp or 0), reverse=True)
        for backup in backups:
            backup.created = utils.format_datetime(utils.timestamp_to_datetime(backup.time_stamp))
        return backups[:RECENT_BACKUPS], len(backups), more

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["api_error"] = False
        try:
            counts, total, complete = self.count_jobs()
            backups, backup_count, more_backups = self.recent_backups()
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the backup overview."))
            context["api_error"] = True
            return context
        context.update(
            job_total=total,
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
        return context
