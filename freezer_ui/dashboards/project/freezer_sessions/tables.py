from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils


class CreateSession(tables.LinkAction):
    name = "create"
    verbose_name = _("Create Session")
    url = "horizon:project:freezer_sessions:create"
    classes = ("ajax-modal",)
    icon = "plus"


class AddJob(tables.LinkAction):
    name = "add_job"
    verbose_name = _("Add Job")
    url = "horizon:project:freezer_sessions:add_job"
    classes = ("ajax-modal",)
    icon = "plus"


class RemoveJob(tables.LinkAction):
    name = "remove_job"
    verbose_name = _("Remove Job")
    url = "horizon:project:freezer_sessions:remove_job"
    classes = ("ajax-modal",)
    icon = "minus"

    def allowed(self, request, session=None):
        return session is None or bool(session.jobs)


class DeleteSession(tables.DeleteAction):
    help_text = _("The session's jobs are kept; they no longer run together.")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Session", "Delete Sessions", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Session", "Deleted Sessions", count)

    def delete(self, request, obj_id):
        api_freezer.session_delete(request, obj_id)


def schedule(session):
    return utils.schedule_display((session.schedule or {}).get("schedule_interval"))


def job_count(session):
    return len(session.jobs or {})


class SessionsTable(utils.PagedDataTable):
    description = tables.Column("description", verbose_name=_("Session"))
    schedule = tables.Column(schedule, verbose_name=_("Schedule"))
    jobs = tables.Column(job_count, verbose_name=_("Jobs"))
    status = tables.Column("status", verbose_name=_("Status"), empty_value="-")
    result = tables.Column("result", verbose_name=_("Last result"), empty_value="-")

    class Meta:
        name = "sessions"
        verbose_name = _("Sessions")
        table_actions = (CreateSession, DeleteSession)
        row_actions = (AddJob, RemoveJob, DeleteSession)
