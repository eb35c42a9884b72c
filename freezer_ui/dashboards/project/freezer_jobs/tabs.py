from django.utils.translation import gettext_lazy as _
from horizon import tabs

from freezer_ui.dashboards import utils


class OverviewTab(tabs.Tab):
    name = _("Overview")
    slug = "overview"
    template_name = "freezer_ui/project/freezer_jobs/_detail_overview.html"

    def get_context_data(self, request):
        job = self.tab_group.kwargs["job"]
        return {
            "job": job,
            "state": dict(utils.JOB_STATES).get(utils.job_state(job), job.status),
            "schedule_text": utils.schedule_display(job.schedule_interval),
        }


class ActionsTab(tabs.Tab):
    name = _("Actions")
    slug = "actions"
    template_name = "freezer_ui/project/freezer_jobs/_detail_actions.html"

    def get_context_data(self, request):
        job = self.tab_group.kwargs["job"]
        # Each entry wraps a freezer_action with its retry policy (job_actions in the document).
        return {"job": job, "job_actions": job.to_dict().get("job_actions") or []}


class JobDetailTabs(tabs.TabGroup):
    slug = "job_details"
    tabs = (OverviewTab, ActionsTab)
    sticky = True
