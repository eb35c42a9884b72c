from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, tables, views
from horizon.utils import memoized

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups import tables as backup_tables


class IndexView(utils.PagedTableMixin, tables.DataTableView):
    table_class = backup_tables.BackupsTable
    template_name = "freezer_ui/project/freezer_backups/index.html"
    page_title = _("Backups")

    def get_data(self):
        offset, limit = self.page()
        info = self.get_server_filter_info(self.request) or {}
        try:
            backups, self._more = api_freezer.backup_list(
                self.request, limit=limit, offset=offset, search=info.get("value") or None
            )
        except Exception:
            return self.api_failed(_("Unable to retrieve backups."))
        return backups


class DetailView(views.HorizonTemplateView):
    template_name = "freezer_ui/project/freezer_backups/detail.html"
    page_title = "{{ backup.backup_name }}"

    @memoized.memoized_method
    def get_backup(self):
        try:
            return api_freezer.backup_get(self.request, self.kwargs["backup_id"])
        except Exception:
            exceptions.handle(
                self.request,
                _("Unable to retrieve the backup."),
                redirect=reverse("horizon:project:freezer_backups:index"),
            )

    def get_context_data(self, **kwargs):
        backup = self.get_backup()
        context = super().get_context_data(backup=backup, **kwargs)
        context["created"] = utils.format_datetime(utils.timestamp_to_datetime(backup.time_stamp))
        context["url"] = reverse("horizon:project:freezer_backups:index")
        return context
