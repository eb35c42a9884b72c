from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups.tables import backup_time


class RestorePointsTable(utils.PagedDataTable):
    """Backups a restore can start from; read-only until the restore wizard exists."""

    backup_name = tables.Column(
        "backup_name",
        verbose_name=_("Backup name"),
        link="horizon:project:freezer_backups:detail",
    )
    hostname = tables.Column("hostname", verbose_name=_("Host"))
    time = tables.Column(backup_time, verbose_name=_("Created"), filters=(utils.format_datetime,))
    engine = tables.Column("engine_name", verbose_name=_("Engine"))
    storage = tables.Column("storage", verbose_name=_("Storage"))
    container = tables.Column("container", verbose_name=_("Container"))
    generation = tables.Column("generation_id", verbose_name=_("Generation"), empty_value="-")

    class Meta:
        name = "restore_points"
        verbose_name = _("Restorable backups")
