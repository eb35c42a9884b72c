from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, tables, tabs

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups import tables as backup_tables

# The job's most recent backups shown on its page; the Backups panel has them all.
JOB_BACKUPS = 50
# The job's most recent runs shown on its page (older runs are kept, not shown here).
JOB_RUNS = 50

RUN_STATUS_DISPLAY = (
    ("running", _("Running")),
    ("success", _("Success")),
    ("fail", _("Failed")),
    ("aborted", _("Aborted")),
    ("interrupted", _("Interrupted")),
)


class OverviewTab(tabs.Tab):
    name = _("Overview")
    slug = "overview"
    template_name = "freezer_ui/project/freezer_jobs/_detail_overview.html"

    def get_context_data(self, request):
        job = self.tab_group.kwargs["job"]
        return {
            "job": job,
            "state": dict(utils.JOB_STATES).get(utils.job_state(job), job.status),
            "schedule_text": utils.schedule_display(job.schedule_interval),
            "start_date": utils.parse_iso(job.schedule_start_date),
            "end_date": utils.parse_iso(job.schedule_end_date),
        }


class ActionsTab(tabs.Tab):
    name = _("Actions")
    slug = "actions"
    template_name = "freezer_ui/project/freezer_jobs/_detail_actions.html"

    def get_context_data(self, request):
        job = self.tab_group.kwargs["job"]
        # Each entry wraps a freezer_action with its retry policy (job_actions in the document).
        return {"job": job, "job_actions": job.to_dict().get("job_actions") or []}


class JobBackupsTable(tables.DataTable):
    time = tables.Column(
        backup_tables.backup_time, verbose_name=_("Created"), filters=(utils.format_datetime,)
    )
    hostname = tables.Column("hostname", verbose_name=_("Host"))
    level = tables.Column("level", verbose_name=_("Level"), empty_value="-")
    size = tables.Column("size", verbose_name=_("Size"), filters=(backup_tables.bytes_display,))
    new = tables.Column(
        "new_bytes", verbose_name=_("New data"), filters=(backup_tables.bytes_display,)
    )
    status = tables.Column(
        "status", verbose_name=_("Status"), display_choices=backup_tables.STATUS_DISPLAY
    )
    generation = tables.Column("generation_id", verbose_name=_("Generation"), empty_value="-")

    def get_object_id(self, datum):
        return datum.id

    class Meta:
        name = "job_backups"
        verbose_name = _("Backups made by this job")


class BackupsTab(tabs.TableTab):
    name = _("Backups")
    slug = "backups"
    table_classes = (JobBackupsTable,)
    template_name = "horizon/common/_detail_table.html"
    preload = False

    def get_job_backups_data(self):
        job = self.tab_group.kwargs["job"]
        if not job.backup_name:
            return []
        try:
            # Exact field match: backups whose backup_name is the job's (freezer-api "match").
            backups, _more = api_freezer.backup_list(
                self.request,
                limit=JOB_BACKUPS,
                offset=0,
                search={"match": [{"backup_name": job.backup_name}]},
            )
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the job's backups."))
            return []
        return sorted(backups, key=lambda b: b.time_stamp, reverse=True)


def run_started(run):
    return utils.timestamp_to_datetime(run.started)


def duration_display(seconds):
    """A run's duration for people ("2:05", "1:02:03"), or None when unknown."""
    if seconds is None:
        return None
    seconds = max(0, int(round(float(seconds))))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def run_duration(run):
    return duration_display(run.duration)


def _run_total(run, summary_key, progress_key):
    # A finished backup's summary has the totals; a running (or failed) run, its progress.
    for action in run.actions:
        value = (action.get("summary") or {}).get(summary_key)
        if value is not None:
            return value
    return run.progress.get(progress_key)


def run_bytes(run):
    value = _run_total(run, "bytes", "bytes_done")
    return None if value is None else filesizeformat(value)


def run_files(run):
    return _run_total(run, "files", "files_done")


def run_detail_url(run):
    return reverse("horizon:project:freezer_jobs:run_detail", args=(run.job_id, run.id))


class JobRunsTable(tables.DataTable):
    started = tables.Column(
        run_started, verbose_name=_("Started"), filters=(utils.format_datetime,),
        link=run_detail_url,
    )  # fmt: skip
    duration = tables.Column(run_duration, verbose_name=_("Duration"), empty_value="-")
    status = tables.Column(
        "status", verbose_name=_("Status"), display_choices=RUN_STATUS_DISPLAY, empty_value="-"
    )
    bytes = tables.Column(run_bytes, verbose_name=_("Bytes"), empty_value="-")
    files = tables.Column(run_files, verbose_name=_("Files"), empty_value="-")

    def get_object_id(self, datum):
        return datum.id

    class Meta:
        name = "job_runs"
        verbose_name = _("Runs of this job")


class RunsTab(tabs.TableTab):
    name = _("Runs")
    slug = "runs"
    table_classes = (JobRunsTable,)
    template_name = "horizon/common/_detail_table.html"
    preload = False

    def get_job_runs_data(self):
        job = self.tab_group.kwargs["job"]
        try:
            runs, _more = api_freezer.job_run_list(
                self.request, job_id=job.id, limit=JOB_RUNS, offset=0
            )
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the job's runs."))
            return []
        return runs


class JobDetailTabs(tabs.TabGroup):
    slug = "job_details"
    tabs = (OverviewTab, ActionsTab, RunsTab, BackupsTab)
    sticky = True
