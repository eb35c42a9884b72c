from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from horizon import forms, tables

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_sessions import forms as session_forms
from freezer_ui.dashboards.project.freezer_sessions import tables as session_tables


class IndexView(utils.PagedTableMixin, tables.DataTableView):
    table_class = session_tables.SessionsTable
    template_name = "freezer_ui/project/freezer_sessions/index.html"
    page_title = _("Sessions")

    def get_data(self):
        offset, limit = self.page()
        try:
            sessions, self._more = api_freezer.session_list(
                self.request, limit=limit, offset=offset
            )
        except Exception:
            return self.api_failed(_("Unable to retrieve sessions."))
        return sessions


class CreateView(forms.ModalFormView):
    form_class = session_forms.CreateSessionForm
    form_id = "create_session_form"
    modal_id = "create_session_modal"
    template_name = "freezer_ui/project/freezer_sessions/create.html"
    page_title = _("Create Session")
    submit_label = _("Create Session")
    submit_url = reverse_lazy("horizon:project:freezer_sessions:create")
    success_url = reverse_lazy("horizon:project:freezer_sessions:index")
