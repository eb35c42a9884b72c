from django.utils.translation import gettext_lazy as _
from horizon import tables

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.admin.freezer_jobs import tables as admin_tables


class IndexView(utils.AllProjectsMixin, tables.DataTableView):
    table_class = admin_tables.AdminJobsTable
    template_name = "freezer_ui/admin/freezer_jobs/index.html"
    page_title = _("Backup Jobs")
    list_function = "job_list"
    error_message = _("Unable to retrieve backup jobs.")
