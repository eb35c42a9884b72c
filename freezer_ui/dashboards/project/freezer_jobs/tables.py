from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

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


class UpdateRow(tables.Row):
    # Rows of jobs that are starting, running or stopping refresh themselves until they settle.
    ajax = True

    def get_data(self, request, job_id):
        return api_freezer.job_get(request, job_id)


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
    result = tables.Column(
        "result", verbose_name=_("Last result"), display_choices=RESULT_DISPLAY, empty_value="-"
    )

    class Meta:
        name = "jobs"
        verbose_name = _("Backup Jobs")
        status_columns = ("status",)
        row_class = UpdateRow
        table_actions = (JobFilter, CreateJob, DeleteJob)
        row_actions = (StartJob, StopJob, AbortJob, UpdateJob, DeleteJob)
