from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, tables
from horizon.utils import memoized

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


class SessionJobView(forms.ModalFormView):
    """Add a job to, or remove one from, the session named in the URL."""

    url_name = ""
    success_url = reverse_lazy("horizon:project:freezer_sessions:index")

    @memoized.memoized_method
    def get_session(self):
        try:
            return api_freezer.session_get(self.request, self.kwargs["session_id"])
        except Exception:
            exceptions.handle(
                self.request, _("Unable to retrieve the session."), redirect=self.success_url
            )

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["session"] = self.get_session()
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        session = self.get_session()
        context["session"] = session
        context["session_schedule"] = utils.schedule_display(
            (session.schedule or {}).get("schedule_interval")
        )
        context["submit_url"] = reverse(self.url_name, args=(self.kwargs["session_id"],))
        return context


class AddJobView(SessionJobView):
    form_class = session_forms.AddJobForm
    form_id = "add_job_form"
    modal_id = "add_job_modal"
    template_name = "freezer_ui/project/freezer_sessions/add_job.html"
    page_title = _("Add Job to Session")
    submit_label = _("Add Job")
    url_name = "horizon:project:freezer_sessions:add_job"


class RemoveJobView(SessionJobView):
    form_class = session_forms.RemoveJobForm
    form_id = "remove_job_form"
    modal_id = "remove_job_modal"
    template_name = "freezer_ui/project/freezer_sessions/remove_job.html"
    page_title = _("Remove Job from Session")
    submit_label = _("Remove Job")
    url_name = "horizon:project:freezer_sessions:remove_job"
