from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups import tables as backup_tables


class ProjectFilter(tables.FilterAction):
    # Server side, like the other admin lists: the view matches the project name or ID.
    filter_type = "server"
    filter_choices = (("project", _("Project ="), True),)


def last_success(totals):
    return utils.timestamp_to_datetime(totals["last_success"])


class ProjectTotalsTable(tables.DataTable):
    """One row per project with backup records or jobs (rows are ``stats.project_totals``)."""

    project = tables.Column("project_name", verbose_name=_("Project"))
    stored = tables.Column(
        "stored_bytes", verbose_name=_("Stored"), filters=(backup_tables.bytes_display,)
    )
    generations = tables.Column("generations", verbose_name=_("Backups"))
    last_success = tables.Column(
        last_success, verbose_name=_("Last success"), filters=(utils.format_datetime,)
    )
    failures = tables.Column("failures", verbose_name=_("Failures (7 days)"))
    jobs = tables.Column("jobs", verbose_name=_("Jobs"))
    running = tables.Column("running_jobs", verbose_name=_("Running"))

    def get_object_id(self, datum):
        return datum["project_id"]

    class Meta:
        name = "project_totals"
        verbose_name = _("Backups by project")
        table_actions = (ProjectFilter,)
