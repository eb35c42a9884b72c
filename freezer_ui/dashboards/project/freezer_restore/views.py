from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_restore import tables as restore_tables


class IndexView(utils.PagedTableMixin, tables.DataTableView):
    table_class = restore_tables.RestorePointsTable
    template_name = "freezer_ui/project/freezer_restore/index.html"
    page_title = _("Restore")

    def get_data(self):
        offset, limit = self.page()
        try:
            backups, self._more = api_freezer.backup_list(self.request, limit=limit, offset=offset)
        except Exception:
            return self.api_failed(_("Unable to retrieve backups."))
        # Only a backup that reached its storage can be restored from.
        return [b for b in backups if (b.status or "available") == "available"]
