from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_jobs import tables as project_tables


class AdminJobsTable(utils.PagedDataTable):
    """Read-only: an admin sees every project's jobs here; each project runs its own."""

    project = utils.ProjectColumn()
    description = tables.Column("description", verbose_name=_("Job"))
    engine = tables.Column("engine_name", verbose_name=_("Engine"))
    path = tables.Column("path_to_backup", verbose_name=_("Source path"))
    storage = tables.Column("storage", verbose_name=_("Storage"))
    schedule = tables.Column(project_tables._schedule, verbose_name=_("Schedule"))
    status = tables.Column(
        utils.job_state, verbose_name=_("Status"), display_choices=utils.JOB_STATES
    )
    result = tables.Column(
        "result",
        verbose_name=_("Last result"),
        display_choices=project_tables.RESULT_DISPLAY,
        empty_value="-",
    )

    class Meta:
        name = "admin_jobs"
        verbose_name = _("Backup Jobs (all projects)")
        table_actions = (utils.AllProjectsFilter,)
