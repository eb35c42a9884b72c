from django.utils.translation import gettext_lazy as _
from horizon import exceptions, tables
from openstack_dashboard.api import keystone

from freezer_ui.api import stats
from freezer_ui.dashboards.admin.freezer_overview import tables as overview_tables

# The chart shows the projects that store the most; the table lists them all.
CHART_PROJECTS = 20


class IndexView(tables.DataTableView):
    table_class = overview_tables.ProjectTotalsTable
    template_name = "freezer_ui/admin/freezer_overview/index.html"
    page_title = _("Backup Overview (all projects)")
    api_error = False

    def project_names(self):
        try:
            projects, _more = keystone.tenant_list(self.request)
        except Exception:
            # Names are a convenience: without them the rows show project IDs.
            exceptions.handle(self.request, _("Unable to retrieve project names."))
            return {}
        return {p.id: p.name for p in projects}

    def get_data(self):
        names = self.project_names()
        try:
            totals = stats.project_totals(self.request)
        except Exception:
            self.api_error = True
            exceptions.handle(self.request, _("Unable to retrieve the backup totals."))
            return []
        for entry in totals:
            entry["project_name"] = names.get(entry["project_id"]) or entry["project_id"]
        info = self.get_server_filter_info(self.request) or {}
        wanted = (info.get("value") or "").strip().lower()
        if wanted:
            # A name (any domain's project of that name) or an ID.
            totals = [
                e
                for e in totals
                if e["project_name"].lower() == wanted or e["project_id"].lower() == wanted
            ]
        return totals

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = context["table"].data
        context["api_error"] = self.api_error
        # Rendered with json_script: names are user data, never inlined into a script.
        context["chart_data"] = [
            {"name": e["project_name"], "stored_bytes": e["stored_bytes"]}
            for e in rows[:CHART_PROJECTS]
            if e["stored_bytes"]
        ]
        return context
