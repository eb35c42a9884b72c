from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.admin.freezer_clients import tables as admin_tables


class IndexView(utils.AllProjectsMixin, tables.DataTableView):
    table_class = admin_tables.AdminClientsTable
    template_name = "freezer_ui/admin/freezer_clients/index.html"
    page_title = _("Backup Clients")
    list_function = "client_list"
    error_message = _("Unable to retrieve backup clients.")
