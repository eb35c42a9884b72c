from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.api import restore_sources
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups.tables import backup_time


def wizard_url(backup_id):
    """The restore wizard with ``backup_id`` preselected (the Backups panel links here too)."""
    return (
        reverse("horizon:project:freezer_restore:wizard")
        + "?"
        + urlencode({"backup_id": backup_id})
    )


class RestoreBackup(tables.LinkAction):
    name = "restore"
    verbose_name = _("Restore…")
    icon = "undo"

    def get_link_url(self, datum=None):
        return wizard_url(datum.id)

    def allowed(self, request, datum=None):
        # Looks at the record only (no API call): can a registered source restore it?
        try:
            restore_sources.source_for(datum)
        except restore_sources.RestoreSourceError:
            return False
        return True


class RestorePointsTable(utils.PagedDataTable):
    """Backups a restore can start from; each row opens the restore wizard."""

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
        row_actions = (RestoreBackup,)
