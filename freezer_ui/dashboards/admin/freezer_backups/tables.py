from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups import tables as project_tables


class AdminBackupsTable(utils.PagedDataTable):
    """Read-only: every project's backups."""

    project = utils.ProjectColumn()
    backup_name = tables.Column("backup_name", verbose_name=_("Backup name"))
    hostname = tables.Column("hostname", verbose_name=_("Host"))
    time = tables.Column(
        project_tables.backup_time, verbose_name=_("Created"), filters=(utils.format_datetime,)
    )
    engine = tables.Column("engine_name", verbose_name=_("Engine"))
    storage = tables.Column("storage", verbose_name=_("Storage"))
    size = tables.Column("size", verbose_name=_("Size"), filters=(project_tables.bytes_display,))
    status = tables.Column(
        "status", verbose_name=_("Status"), display_choices=project_tables.STATUS_DISPLAY
    )

    class Meta:
        name = "admin_backups"
        verbose_name = _("Backups (all projects)")
        table_actions = (utils.AllProjectsFilter,)
