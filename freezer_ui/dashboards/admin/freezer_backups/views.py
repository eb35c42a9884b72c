from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.api import backup_groups
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.admin.freezer_backups import tables as admin_tables
from freezer_ui.dashboards.project.freezer_backups.views import SortMixin


class IndexView(SortMixin, utils.AllProjectsMixin, tables.DataTableView):
    """Every project's backup groups.  The panel requires the admin role (``permissions``)
    and the API refuses ``all_projects`` to anyone else as well."""

    table_class = admin_tables.AdminGroupsTable
    template_name = "freezer_ui/admin/freezer_backups/index.html"
    page_title = _("Backups")
    sort_keys = backup_groups.GROUP_SORTS
    default_sort = backup_groups.DEFAULT_GROUP_SORT

    def get_data(self):
        offset, limit = self.page()
        key, descending = self.sort()
        names = self.project_names()
        self.get_table().project_names = names
        info = self.get_server_filter_info(self.request) or {}
        value = (info.get("value") or "").strip()
        project_ids = [None]
        search = None
        if value and info.get("field") == "project":
            wanted = value.lower()
            project_ids = [pid for pid, name in names.items() if (name or "").lower() == wanted]
            if not project_ids:
                project_ids = [value]  # maybe an ID, or a project whose name is unknown here
        elif value:
            search = value
        groups = []
        try:
            # Several projects may share a name (other domains): one listing each.
            for project_id in project_ids:
                page, more = backup_groups.backup_group_list(
                    self.request,
                    limit=limit,
                    offset=offset,
                    sort=key,
                    descending=descending,
                    search=search,
                    all_projects=True,
                    project_id=project_id,
                )
                groups.extend(page)
                self._more = self._more or more
        except Exception:
            return self.api_failed(_("Unable to retrieve backups."))
        return groups
