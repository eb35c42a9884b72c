from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, tables, tabs
from horizon.utils import memoized

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_jobs import forms as job_forms
from freezer_ui.dashboards.project.freezer_jobs import tables as job_tables
from freezer_ui.dashboards.project.freezer_jobs import tabs as job_tabs

INDEX_URL = "horizon:project:freezer_jobs:index"


class IndexView(utils.PagedTableMixin, tables.DataTableView):
    table_class = job_tables.JobsTable
    template_name = "freezer_ui/project/freezer_jobs/index.html"
    page_title = _("Backup Jobs")

    def search_string(self):
        info = self.get_server_filter_info(self.request)
        return (info or {}).get("value") or None

    def get_data(self):
        offset, limit = self.page()
        try:
            jobs, self._more = api_freezer.job_list(
                self.request, limit=limit, offset=offset, search=self.search_string()
            )
        except Exception:
            return self.api_failed(_("Unable to retrieve backup jobs."))
        return jobs


def initial_from_job(job):
    """Form values for an existing job (the inverse of ``JobForm.schedule``/``backup_action``)."""
    first = next(
        (
            a
            for a in job.to_dict().get("job_actions") or []
            if (a.get("freezer_action") or {}).get("action", "backup") == "backup"
        ),
        {},
    )
    action = first.get("freezer_action") or {}
    initial = {
        "description": job.description,
        "client_id": job.client_id or "",
        "engine_name": action.get("engine_name"),
        "storage": action.get("storage"),
        "path_to_backup": action.get("path_to_backup"),
        "backup_name": action.get("backup_name"),
        "container": action.get("container"),
        "remove_older_than": action.get("remove_older_than"),
        "max_retries": first.get("max_retries", 3),
        "max_retries_interval": first.get("max_retries_interval", 60),
        "start_date": utils.parse_iso(job.schedule_start_date),
        "end_date": utils.parse_iso(job.schedule_end_date),
        "schedule_kind": "once",
    }
    interval = (job.schedule_interval or "").strip()
    if interval == "continuous":
        initial["schedule_kind"] = "continuous"
    elif interval:
        number, _sep, unit = interval.partition(" ")
        unit = unit.strip()
        # freezer-api also accepts the singular ("1 day"); the select only has plurals.
        if not unit.endswith("s"):
            unit += "s"
        if number.isdigit():
            initial.update(
                schedule_kind="interval", interval_number=int(number), interval_unit=unit
            )
    return initial


class CreateView(forms.ModalFormView):
    form_class = job_forms.CreateJobForm
    form_id = "create_job_form"
    modal_id = "create_job_modal"
    template_name = "freezer_ui/project/freezer_jobs/create.html"
    page_title = _("Create Backup Job")
    submit_label = _("Create Job")
    submit_url = reverse_lazy("horizon:project:freezer_jobs:create")
    success_url = reverse_lazy(INDEX_URL)


class UpdateView(forms.ModalFormView):
    form_class = job_forms.UpdateJobForm
    form_id = "update_job_form"
    modal_id = "update_job_modal"
    template_name = "freezer_ui/project/freezer_jobs/update.html"
    page_title = _("Edit Backup Job")
    submit_label = _("Save Changes")
    success_url = reverse_lazy(INDEX_URL)

    @memoized.memoized_method
    def get_object(self):
        try:
            return api_freezer.job_get(self.request, self.kwargs["job_id"])
        except Exception:
            exceptions.handle(
                self.request, _("Unable to retrieve the job."), redirect=reverse(INDEX_URL)
            )

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["job_doc"] = self.get_object().to_dict()
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["submit_url"] = reverse(
            "horizon:project:freezer_jobs:update", args=(self.kwargs["job_id"],)
        )
        return context

    def get_initial(self):
        return initial_from_job(self.get_object())


class DetailView(tabs.TabView):
    tab_group_class = job_tabs.JobDetailTabs
    template_name = "horizon/common/_detail.html"
    page_title = "{{ job.description }}"

    @memoized.memoized_method
    def get_data(self):
        try:
            return api_freezer.job_get(self.request, self.kwargs["job_id"])
        except Exception:
            exceptions.handle(
                self.request, _("Unable to retrieve the job."), redirect=reverse(INDEX_URL)
            )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = self.get_data()
        table = job_tables.JobsTable(self.request)
        context["job"] = job
        context["url"] = reverse(INDEX_URL)
        context["actions"] = table.render_row_actions(job)
        return context

    def get_tabs(self, request, *args, **kwargs):
        return self.tab_group_class(request, job=self.get_data(), **kwargs)
