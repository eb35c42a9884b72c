from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups import tables as project_tables

SortableColumn = project_tables.SortableColumn


class AdminGroupsTable(project_tables.ServerSortedTable):
    """Read-only: every project's backups, one row per backup (series of generations)."""

    project = utils.ProjectColumn(sortable=False)
    backup_name = SortableColumn("backup_name", verbose_name=_("Backup name"),
                                 sort_key="backup_name")  # fmt: skip
    hostname = SortableColumn("hostname", verbose_name=_("Host"), sort_key="hostname")
    engine = SortableColumn("engine_name", verbose_name=_("Engine"), sort_key="engine_name")
    storage = SortableColumn("storage", verbose_name=_("Storage"), sort_key="storage")
    origin = SortableColumn(
        "origin",
        verbose_name=_("Written by"),
        display_choices=project_tables.ORIGIN_DISPLAY,
        sort_key="origin",
    )
    generations = SortableColumn(
        "generations", verbose_name=_("Generations"), sort_key="generations"
    )
    last_time = SortableColumn(
        project_tables.group_time,
        verbose_name=_("Last backup"),
        filters=(utils.format_datetime,),
        sort_key="last_time",
    )
    last_status = tables.Column(
        "last_status",
        verbose_name=_("Last status"),
        display_choices=project_tables.STATUS_DISPLAY,
        sortable=False,
    )
    size = SortableColumn(
        "size",
        verbose_name=_("Logical size (all)"),
        filters=(project_tables.bytes_display,),
        sort_key="size",
    )
    stored = SortableColumn(
        "stored_bytes",
        verbose_name=_("Stored"),
        filters=(project_tables.bytes_display,),
        sort_key="stored_bytes",
    )

    def get_object_id(self, datum):
        return datum.last_backup_id or "|".join(datum.key)

    class Meta:
        name = "admin_backup_groups"
        verbose_name = _("Backups (all projects)")
        table_actions = (utils.AllProjectsFilter,)
