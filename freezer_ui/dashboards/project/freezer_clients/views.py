from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_clients import tables as client_tables


class IndexView(utils.PagedTableMixin, tables.DataTableView):
    table_class = client_tables.ClientsTable
    template_name = "freezer_ui/project/freezer_clients/index.html"
    page_title = _("Backup Clients")

    def get_data(self):
        offset, limit = self.page()
        info = self.get_server_filter_info(self.request) or {}
        try:
            clients, self._more = api_freezer.client_list(
                self.request, limit=limit, offset=offset, search=info.get("value") or None
            )
        except Exception:
            return self.api_failed(_("Unable to retrieve backup clients."))
        return clients
