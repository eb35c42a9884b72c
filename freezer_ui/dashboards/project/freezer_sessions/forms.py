from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, messages

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import forms as dashboard_forms


class CreateSessionForm(dashboard_forms.ScheduleForm):
    description = forms.CharField(
        label=_("Description"),
        max_length=255,
        help_text=_("A name for the session, e.g. the service whose nodes it backs up together."),
    )
    hold_off = forms.IntegerField(
        label=_("Hold off (seconds)"),
        required=False,
        min_value=0,
        max_value=86400,
        help_text=_("How long the session waits for every job before starting them."),
    )

    field_order = (
        "description", "hold_off", "schedule_kind", "interval_number", "interval_unit",
        "start_date", "end_date",
    )  # fmt: skip

    def handle(self, request, data):
        doc = {"description": data["description"], "schedule": self.schedule(data)}
        if data.get("hold_off") is not None:
            doc["hold_off"] = data["hold_off"]
        try:
            api_freezer.session_create(request, doc)
        except api_exceptions.ValidationError as error:
            dashboard_forms.map_api_errors(self, error)
            return False
        except Exception:
            exceptions.handle(request, _("Unable to create the session."))
            return False
        messages.success(request, _('Created session "%s".') % data["description"])
        return True


class SessionJobForm(forms.SelfHandlingForm):
    """Pick one job of the project for a session (base of add and remove)."""

    job_id = forms.ChoiceField(label=_("Job"))

    def __init__(self, request, *args, **kwargs):
        # The session as loaded by the view from the URL's ID.
        self.session = kwargs.pop("session")
        super().__init__(request, *args, **kwargs)
        self.fields["job_id"].choices = self._choices(request)

    def _choices(self, request):
        try:
            jobs, _more = api_freezer.job_list(request, limit=1000, offset=0)
        except Exception:
            exceptions.handle(request, _("Unable to retrieve the jobs."))
            return [("", _("The list of jobs could not be retrieved"))]
        choices = [(job.id, job.description or job.id) for job in jobs if self.offer(job)]
        if not choices:
            return [("", self.nothing_to_pick)]
        return [("", _("Select a job"))] + choices


class AddJobForm(SessionJobForm):
    nothing_to_pick = _("Every job of the project is already in this session")

    def offer(self, job):
        return job.id not in self.session.jobs

    def handle(self, request, data):
        try:
            api_freezer.session_add_job(request, self.session.id, data["job_id"])
        except Exception:
            exceptions.handle(request, _("Unable to add the job to the session."))
            return False
        messages.success(request, _("Added the job to the session."))
        return True


class RemoveJobForm(SessionJobForm):
    nothing_to_pick = _("This session has no jobs")

    def offer(self, job):
        return job.id in self.session.jobs

    def handle(self, request, data):
        try:
            api_freezer.session_remove_job(request, self.session.id, data["job_id"])
        except Exception:
            exceptions.handle(request, _("Unable to remove the job from the session."))
            return False
        messages.success(request, _("Removed the job from the session."))
        return True
