from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, messages

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import forms as dashboard_forms
from freezer_ui.dashboards import utils


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


# The job_schedule keys that say when a job runs (status, event and times say what it does).
WHEN_KEYS = (
    "schedule_interval", "schedule_start_date", "schedule_end_date", "schedule_date",
    "schedule_year", "schedule_month", "schedule_day", "schedule_week", "schedule_day_of_week",
    "schedule_hour", "schedule_minute", "schedule_second",
)  # fmt: skip


def when(schedule):
    """The part of a schedule that says when the job runs."""
    return {key: schedule[key] for key in WHEN_KEYS if (schedule or {}).get(key)}


def overridden(job, session):
    """Whether adding ``job`` to ``session`` replaces a schedule of the job's own.

    freezer-api (and the embedded store) copy the session's schedule over the job's when the
    job joins: a job that had its own, different schedule loses it.
    """
    own = when(job.job_schedule)
    return bool(own) and own != when(session.schedule)


class SessionJobForm(forms.SelfHandlingForm):
    """Pick one job of the project for a session (base of add and remove)."""

    job_id = forms.ChoiceField(label=_("Job"))

    def __init__(self, request, *args, **kwargs):
        # The session as loaded by the view from the URL's ID.
        self.session = kwargs.pop("session")
        super().__init__(request, *args, **kwargs)
        self.jobs = {}
        self.fields["job_id"].choices = self._choices(request)

    def _choices(self, request):
        try:
            jobs, _more = api_freezer.job_list(request, limit=1000, offset=0)
        except Exception:
            exceptions.handle(request, _("Unable to retrieve the jobs."))
            return [("", _("The list of jobs could not be retrieved"))]
        self.jobs = {job.id: job for job in jobs if self.offer(job)}
        choices = [(job.id, self.label(job)) for job in self.jobs.values()]
        if not choices:
            return [("", self.nothing_to_pick)]
        return [("", _("Select a job"))] + choices

    def label(self, job):
        return job.description or job.id


class AddJobForm(SessionJobForm):
    nothing_to_pick = _("Every job of the project is already in this session")

    def offer(self, job):
        return job.id not in self.session.jobs

    def label(self, job):
        name = job.description or job.id
        if overridden(job, self.session):
            # Said in the list already, before the user picks: this job has its own schedule.
            return _("%(name)s (own schedule: %(schedule)s)") % {
                "name": name,
                "schedule": utils.schedule_display(job.schedule_interval),
            }
        return name

    def handle(self, request, data):
        job = self.jobs.get(data["job_id"])
        try:
            api_freezer.session_add_job(request, self.session.id, data["job_id"])
        except Exception:
            exceptions.handle(request, _("Unable to add the job to the session."))
            return False
        if job is not None and overridden(job, self.session):
            # The list said so before the pick; the message says what was replaced.
            messages.warning(
                request,
                _(
                    'Added "%(job)s" to the session "%(session)s". Its own schedule (%(own)s) '
                    "was replaced by the session's (%(session_schedule)s)."
                )
                % {
                    "job": job.description or job.id,
                    "own": utils.schedule_display(job.schedule_interval),
                    "session": self.session.description or self.session.id,
                    "session_schedule": utils.schedule_display(
                        self.session.schedule.get("schedule_interval")
                    ),
                },
            )
        else:
            messages.success(
                request, _("Added the job to the session; it runs on the session's schedule.")
            )
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
        messages.success(
            request,
            _("Removed the job from the session. It is stopped: edit it to give it a schedule."),
        )
        return True
