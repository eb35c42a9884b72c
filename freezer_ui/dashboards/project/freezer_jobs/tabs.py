from django.utils.translation import gettext_lazy as _
from horizon import exceptions, tables, tabs

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups import tables as backup_tables

# The job's most recent backups shown on its page; the Backups panel has them all.
JOB_BACKUPS = 50


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
            "start_date": utils.parse_iso(job.schedule_start_date),
            "end_date": utils.parse_iso(job.schedule_end_date),
        }


class ActionsTab(tabs.Tab):
    name = _("Actions")
    slug = "actions"
    template_name = "freezer_ui/project/freezer_jobs/_detail_actions.html"

    def get_context_data(self, request):
        job = self.tab_group.kwargs["job"]
        # Each entry wraps a freezer_action with its retry policy (job_actions in the document).
        return {"job": job, "job_actions": job.to_dict().get("job_actions") or []}


class JobBackupsTable(tables.DataTable):
    time = tables.Column(
        backup_tables.backup_time, verbose_name=_("Created"), filters=(utils.format_datetime,)
    )
    hostname = tables.Column("hostname", verbose_name=_("Host"))
    level = tables.Column("level", verbose_name=_("Level"), empty_value="-")
    size = tables.Column("size", verbose_name=_("Size"), filters=(backup_tables.bytes_display,))
    new = tables.Column(
        "new_bytes", verbose_name=_("New data"), filters=(backup_tables.bytes_display,)
    )
    status = tables.Column(
        "status", verbose_name=_("Status"), display_choices=backup_tables.STATUS_DISPLAY
    )
    generation = tables.Column("generation_id", verbose_name=_("Generation"), empty_value="-")

    def get_object_id(self, datum):
        return datum.id

    class Meta:
        name = "job_backups"
        verbose_name = _("Backups made by this job")


class BackupsTab(tabs.TableTab):
    name = _("Backups")
    slug = "backups"
    table_classes = (JobBackupsTable,)
    template_name = "horizon/common/_detail_table.html"
    preload = False

    def get_job_backups_data(self):
        job = self.tab_group.kwargs["job"]
        if not job.backup_name:
            return []
        try:
            # Exact field match: backups whose backup_name is the job's (freezer-api "match").
            backups, _more = api_freezer.backup_list(
                self.request,
                limit=JOB_BACKUPS,
                offset=0,
                search={"match": [{"backup_name": job.backup_name}]},
            )
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the job's backups."))
            return []
        return sorted(backups, key=lambda b: b.time_stamp, reverse=True)


class JobDetailTabs(tabs.TabGroup):
    slug = "job_details"
    tabs = (OverviewTab, ActionsTab, BackupsTab)
    sticky = True
