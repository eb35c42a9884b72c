from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils

STATUS_DISPLAY = utils.JOB_STATES

RESULT_DISPLAY = (
    ("success", _("Success")),
    ("fail", _("Failed")),
    ("aborted", _("Aborted")),
)


class CreateJob(tables.LinkAction):
    name = "create"
    verbose_name = _("Create Job")
    url = "horizon:project:freezer_jobs:create"
    classes = ("ajax-modal",)
    icon = "plus"


class UpdateJob(tables.LinkAction):
    name = "update"
    verbose_name = _("Edit Job")
    url = "horizon:project:freezer_jobs:update"
    classes = ("ajax-modal",)
    icon = "pencil"

    def allowed(self, request, job=None):
        return job is None or job.status != "running"


class CloneJob(tables.LinkAction):
    name = "clone"
    verbose_name = _("Clone Job")
    url = "horizon:project:freezer_jobs:clone"
    classes = ("ajax-modal",)
    icon = "copy"


class StartJob(tables.BatchAction):
    name = "start"
    classes = ("btn-confirm",)
    icon = "play"
    help_text = _("The job's agent starts it when it next asks for work.")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Start Job", "Start Jobs", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Started Job", "Started Jobs", count)

    def allowed(self, request, job=None):
        return job is None or utils.job_state(job) in utils.STARTABLE_STATES

    def action(self, request, obj_id):
        api_freezer.job_start(request, obj_id)


class StopJob(tables.BatchAction):
    name = "stop"
    classes = ("btn-danger",)
    icon = "stop"
    help_text = _("No new run starts; a run in progress is left to finish (use Abort to end it).")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Stop Job", "Stop Jobs", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Stopped Job", "Stopped Jobs", count)

    def allowed(self, request, job=None):
        return job is None or utils.job_state(job) in utils.STOPPABLE_STATES

    def action(self, request, obj_id):
        api_freezer.job_stop(request, obj_id)


class AbortJob(tables.BatchAction):
    name = "abort"
    classes = ("btn-danger",)
    icon = "times"
    help_text = _("The run in progress is ended; what it stored so far is not a backup.")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Abort Job", "Abort Jobs", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Aborted Job", "Aborted Jobs", count)

    def allowed(self, request, job=None):
        return job is None or utils.job_state(job) == "running"

    def action(self, request, obj_id):
        api_freezer.job_abort(request, obj_id)


class DeleteJob(tables.DeleteAction):
    help_text = _("Deleting a job keeps the backups it already made.")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Job", "Delete Jobs", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Job", "Deleted Jobs", count)

    def allowed(self, request, job=None):
        return job is None or job.status != "running"

    def delete(self, request, obj_id):
        api_freezer.job_delete(request, obj_id)


class JobFilter(tables.FilterAction):
    # Server side: the API pages the list, so filtering one page in the browser would miss rows.
    filter_type = "server"
    filter_choices = (("search", _("Text ="), True),)


# Job states in which a run may be in progress, so progress is worth asking for.
BUSY_STATES = ("running", "aborting")


def _running_run_progress(request, job_id):
    """The progress of the job's running run, None if none runs; raises if runs are unknown."""
    runs, _more = api_freezer.job_run_list(request, job_id=job_id, limit=1, offset=0)
    if runs and runs[0].status == "running":
        return dict(runs[0].progress)
    return None


def _creating_record_progress(request, job_id):
    """The progress the agent publishes on the backup record it is creating, or None.

    The fallback where there is no run history (freezer-api in remote mode has no such kind):
    the agent writes ``backup_metadata.progress`` on its ``creating`` record in both modes.
    """
    records, _more = api_freezer.backup_list(
        request, limit=10, offset=0, search={"match": [{"job_id": job_id}]}
    )
    for record in records:
        progress = (record.to_dict().get("backup_metadata") or {}).get("progress")
        if record.status == "creating" and progress:
            progress = dict(progress)
            done, total = progress.get("bytes_done"), progress.get("bytes_total")
            if progress.get("percent") is None and total:
                progress["percent"] = 100.0 * (done or 0) / total
            return progress
    return None


def job_progress(request, job):
    """Live progress of a busy job (percent, rate, ETA ...), or None.

    Never fails the page: progress is an extra on a row, and a row that cannot show it still
    shows the job.
    """
    if utils.job_state(job) not in BUSY_STATES:
        return None
    try:
        progress = _running_run_progress(request, job.id)
    except api_exceptions.FreezerAPIError:
        progress = None
    if progress is None:
        try:
            progress = _creating_record_progress(request, job.id)
        except api_exceptions.FreezerAPIError:
            progress = None
    return progress


def attach_progress(request, jobs):
    for job in jobs:
        job.live_progress = job_progress(request, job)
    return jobs


def eta_display(seconds):
    """Seconds as ``H:MM:SS`` (``M:SS`` under an hour)."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(progress):
    """One line for people: "42% · 12.0 MB/s · ETA 1:05" (the parts that are known)."""
    parts = []
    percent = progress.get("percent")
    if percent is not None:
        parts.append(f"{min(100.0, max(0.0, float(percent))):.0f}%")
    elif progress.get("bytes_done") is not None:
        parts.append(str(filesizeformat(progress["bytes_done"])))
    if progress.get("rate"):
        parts.append(_("%(rate)s/s") % {"rate": filesizeformat(progress["rate"])})
    if progress.get("eta") is not None:
        parts.append(_("ETA %(eta)s") % {"eta": eta_display(progress["eta"])})
    if progress.get("phase"):
        parts.append(str(progress["phase"]))
    return " · ".join(str(p) for p in parts)


def progress_display(job):
    progress = getattr(job, "live_progress", None)
    if not progress:
        return None
    percent = progress.get("percent")
    width = 0 if percent is None else min(100, max(0, int(float(percent))))
    # format_html escapes every value (the phase text comes from the agent).
    return format_html(
        '<div class="progress freezer-progress" style="margin-bottom:0">'
        '<div class="progress-bar" role="progressbar" aria-valuenow="{}" aria-valuemin="0" '
        'aria-valuemax="100" style="width: {}%"></div></div><small>{}</small>',
        width,
        width,
        progress_text(progress),
    )


class UpdateRow(tables.Row):
    # Rows of jobs that are starting, running or stopping refresh themselves (Horizon polls
    # ``?action=row_update``) until the status column reaches a settled state.
    ajax = True

    def get_data(self, request, job_id):
        job = api_freezer.job_get(request, job_id)
        job.live_progress = job_progress(request, job)
        return job


def _detail_url(job):
    return reverse("horizon:project:freezer_jobs:detail", args=(job.id,))


def _schedule(job):
    return utils.schedule_display(job.schedule_interval)


class JobsTable(utils.PagedDataTable):
    # Autoescaped by the column: names may contain HTML and are shown as text.
    description = tables.Column("description", verbose_name=_("Job"), link=_detail_url)
    engine = tables.Column("engine_name", verbose_name=_("Engine"))
    path = tables.Column("path_to_backup", verbose_name=_("Source path"))
    storage = tables.Column("storage", verbose_name=_("Storage"))
    schedule = tables.Column(_schedule, verbose_name=_("Schedule"))
    status = tables.Column(
        utils.job_state,
        verbose_name=_("Status"),
        status=True,
        status_choices=(
            ("running", None),
            ("starting", None),
            ("stopping", None),
            ("aborting", None),
            ("aborted", False),
            ("removed", False),
            ("scheduled", True),
            ("completed", True),
            ("stop", True),
            ("new", True),
        ),
        display_choices=STATUS_DISPLAY,
    )
    progress = tables.Column(progress_display, verbose_name=_("Progress"), empty_value="-")
    result = tables.Column(
        "result", verbose_name=_("Last result"), display_choices=RESULT_DISPLAY, empty_value="-"
    )

    class Meta:
        name = "jobs"
        verbose_name = _("Backup Jobs")
        status_columns = ("status",)
        row_class = UpdateRow
        table_actions = (JobFilter, CreateJob, DeleteJob)
        row_actions = (StartJob, StopJob, AbortJob, UpdateJob, CloneJob, DeleteJob)
