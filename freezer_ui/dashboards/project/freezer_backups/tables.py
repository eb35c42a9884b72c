from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils

STATUS_DISPLAY = (
    ("creating", _("Creating")),
    ("available", _("Available")),
    ("error", _("Error")),
    ("deleting", _("Deleting")),
    ("deleted", _("Deleted")),
)


class DeleteBackup(tables.DeleteAction):
    help_text = _(
        "The backup's data is removed from its storage; it cannot be restored afterwards."
    )

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Backup", "Delete Backups", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Backup", "Deleted Backups", count)

    def allowed(self, request, backup=None):
        return backup is None or backup.status not in ("creating", "deleting")

    def delete(self, request, obj_id):
        api_freezer.backup_delete(request, obj_id)


class BackupFilter(tables.FilterAction):
    filter_type = "server"
    filter_choices = (("search", _("Text ="), True),)


def backup_time(backup):
    return utils.timestamp_to_datetime(backup.time_stamp)


def bytes_display(value):
    return filesizeformat(value) if value not in (None, "") else "-"


class BackupsTable(utils.PagedDataTable):
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
    level = tables.Column("level", verbose_name=_("Level"), empty_value="-")
    size = tables.Column("size", verbose_name=_("Size"), filters=(bytes_display,))
    new = tables.Column("new_bytes", verbose_name=_("New data"), filters=(bytes_display,))
    status = tables.Column(
        "status",
        verbose_name=_("Status"),
        status=True,
        status_choices=(
            ("available", True),
            ("creating", None),
            ("deleting", None),
            ("error", False),
            ("deleted", False),
        ),
        display_choices=STATUS_DISPLAY,
    )

    class Meta:
        name = "backups"
        verbose_name = _("Backups")
        status_columns = ("status",)
        table_actions = (BackupFilter, DeleteBackup)
        row_actions = (DeleteBackup,)
