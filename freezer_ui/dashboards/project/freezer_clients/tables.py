from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils


class DeleteClient(tables.DeleteAction):
    help_text = _("The agent is unregistered; it registers again the next time it starts.")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Unregister Client", "Unregister Clients", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Unregistered Client", "Unregistered Clients", count)

    def delete(self, request, obj_id):
        api_freezer.client_delete(request, obj_id)


class ClientFilter(tables.FilterAction):
    filter_type = "server"
    filter_choices = (("search", _("Text ="), True),)


def engines(client):
    return ", ".join(getattr(client, "supported_engines", None) or []) or "-"


class ClientsTable(utils.PagedDataTable):
    hostname = tables.Column("hostname", verbose_name=_("Host"))
    client_id = tables.Column("id", verbose_name=_("Client ID"))
    description = tables.Column("description", verbose_name=_("Description"), empty_value="-")
    engines = tables.Column(engines, verbose_name=_("Engines"))

    class Meta:
        name = "clients"
        verbose_name = _("Backup Clients")
        table_actions = (ClientFilter, DeleteClient)
        row_actions = (DeleteClient,)
