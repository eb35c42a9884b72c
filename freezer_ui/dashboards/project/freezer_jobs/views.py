from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, tables, tabs, workflows
from horizon import views as horizon_views
from horizon.utils import memoized

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_jobs import tables as job_tables
from freezer_ui.dashboards.project.freezer_jobs import tabs as job_tabs
from freezer_ui.dashboards.project.freezer_jobs import workflows as job_workflows

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
        # The first render shows the progress of busy rows; their ajax updates keep it fresh.
        return job_tables.attach_progress(self.request, jobs)


def _first(job, test):
    return next((a for a in job.to_dict().get("job_actions") or [] if test(a)), {})


def initial_from_job(job):
    """Wizard values for an existing job (the inverse of ``workflows.backup_action`` & co)."""
    first = _first(job, job_workflows.is_backup)
    action = first.get("freezer_action") or {}
    retention = (_first(job, job_workflows.is_retention).get("freezer_action")) or {}
    exclude = action.get("exclude") or []
    if isinstance(exclude, str):
        exclude = [exclude]
    initial = {
        "description": job.description,
        "client_id": job.client_id or "",
        "engine_name": action.get("engine_name") or action.get("engine"),
        "storage": action.get("storage"),
        "path_to_backup": action.get("path_to_backup"),
        "exclude": "\n".join(str(p) for p in exclude),
        "one_file_system": bool(action.get("one_file_system")),
        "nova_inst_id": action.get("nova_inst_id"),
        "cinderbrick_vol_id": action.get("cinderbrick_vol_id"),
        "backup_name": action.get("backup_name"),
        "container": action.get("container"),
        "passphrase_ref": action.get("passphrase_ref") or "",
        # Jobs made before the wizard kept remove_older_than on the backup action itself.
        "remove_older_than": retention.get("remove_older_than") or action.get("remove_older_than"),
        "max_retries": first.get("max_retries", 3),
        "max_retries_interval": first.get("max_retries_interval", 60),
        "start_date": utils.parse_iso(job.schedule_start_date),
        "end_date": utils.parse_iso(job.schedule_end_date),
        "schedule_kind": "once",
    }
    for key in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"):
        initial[key] = retention.get(key)
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


class JobWorkflowView(workflows.WorkflowView):
    template_name = "freezer_ui/project/freezer_jobs/workflow.html"
    ajax_template_name = "freezer_ui/project/freezer_jobs/_workflow.html"

    def get_workflow(self):
        workflow = super().get_workflow()
        if self.request.method == "GET" and not self.request.GET.get("step"):
            # Horizon opens a wizard at the first step whose fields are not all filled in; a
            # prefilled job (clone, edit) leaves optional fields empty, which would open it in
            # the middle.  After a refused post, Horizon's choice (the step in error) stands.
            workflow.entry_point = workflow.steps[0].slug
        return workflow

    @memoized.memoized_method
    def get_object(self):
        try:
            return api_freezer.job_get(self.request, self.kwargs["job_id"])
        except Exception:
            exceptions.handle(
                self.request, _("Unable to retrieve the job."), redirect=reverse(INDEX_URL)
            )


class CreateView(JobWorkflowView):
    # Horizon seeds the wizard from the query string (?client_id=...), limited to its fields.
    workflow_class = job_workflows.CreateJob


class CloneView(JobWorkflowView):
    """The create wizard, filled in from an existing job (the job itself is not touched).

    The copy starts as a new job: the wizard builds a fresh ``job_schedule`` from the schedule
    fields, so the original's events, status and result are not carried over.
    """

    workflow_class = job_workflows.CreateJob

    def get_initial(self):
        initial = initial_from_job(self.get_object())
        initial["description"] = _("Copy of %(name)s") % {"name": initial["description"] or ""}
        return initial


class UpdateView(JobWorkflowView):
    workflow_class = job_workflows.UpdateJob

    def get_initial(self):
        return initial_from_job(self.get_object())

    def get_workflow(self):
        workflow = super().get_workflow()
        # The job as loaded from the URL's ID (never from a posted field): its other actions
        # and its schedule state are kept as they are.
        workflow.job_doc = self.get_object().to_dict()
        return workflow


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


class RunDetailView(horizon_views.HorizonTemplateView):
    """One run of a job: its times, per-action results and log (escaped, monospace)."""

    template_name = "freezer_ui/project/freezer_jobs/run_detail.html"
    page_title = _("Job run")

    @memoized.memoized_method
    def get_run(self):
        job_url = reverse("horizon:project:freezer_jobs:detail", args=(self.kwargs["job_id"],))
        try:
            run = api_freezer.job_run_get(self.request, self.kwargs["run_id"])
            if run.job_id != self.kwargs["job_id"]:
                # A run of another job under this job's URL: the same answer as a missing one.
                raise api_exceptions.NotFound(f"job {self.kwargs['job_id']} has no such run")
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the run."), redirect=job_url)
        return run

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = self.get_run()
        context.update(
            run=run,
            job_url=reverse("horizon:project:freezer_jobs:detail", args=(run.job_id,)),
            status=dict(job_tabs.RUN_STATUS_DISPLAY).get(run.status, run.status),
            started=utils.timestamp_to_datetime(run.started),
            ended=utils.timestamp_to_datetime(run.ended),
            duration=job_tabs.duration_display(run.duration),
            progress_text=job_tables.progress_text(run.progress),
            actions=run.actions,
            log="\n".join(str(line) for line in run.log),
        )
        return context
