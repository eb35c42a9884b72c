from django.utils.translation import gettext_lazy as _

from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_clients import tables as project_tables


class AdminClientsTable(project_tables.ClientsTable):
    """Read-only: every project's agents.  An agent is unregistered from its own project (the
    service refuses to delete another project's client), so there is no delete action here."""

    project = utils.ProjectColumn()

    class Meta:
        name = "admin_clients"
        verbose_name = _("Backup Clients (all projects)")
        columns = ("project", "hostname", "client_id", "description", "engines")
        table_actions = (utils.AllProjectsFilter,)
        row_actions = ()
