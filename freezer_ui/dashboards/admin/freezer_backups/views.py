from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.admin.freezer_backups import tables as admin_tables


class IndexView(utils.AllProjectsMixin, tables.DataTableView):
    table_class = admin_tables.AdminBackupsTable
    template_name = "freezer_ui/admin/freezer_backups/index.html"
    page_title = _("Backups")
    list_function = "backup_list"
    error_message = _("Unable to retrieve backups.")
