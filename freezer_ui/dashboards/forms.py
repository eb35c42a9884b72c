"""Form parts shared by the panels: the freezer-api schedule as typed fields."""

import datetime

from django import forms as django_forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from horizon import forms

INTERVAL_UNITS = (
    ("minutes", _("Minutes")),
    ("hours", _("Hours")),
    ("days", _("Days")),
    ("weeks", _("Weeks")),
)

# Django's own message repeats the posted value, and Horizon's wizard script inserts step errors
# as HTML: a message without the value cannot carry markup.
PICK_ONE = {"invalid_choice": _("Pick one of the offered choices.")}

SCHEDULE_KINDS = (
    ("once", _("Once, as soon as the agent picks it up")),
    ("interval", _("Repeat every…")),
    ("continuous", _("Continuously (restart as soon as a run ends)")),
)


# Last part of an API error path -> form field.  Paths differ in how they index lists
# ("job_actions.0.freezer_action.engine_name", "job_actions[0]..."), their leaf does not.
ERROR_FIELDS = {
    "description": "description",
    "client_id": "client_id",
    "hold_off": "hold_off",
    "engine_name": "engine_name",
    "storage": "storage",
    "path_to_backup": "path_to_backup",
    "backup_name": "backup_name",
    "container": "container",
    "remove_older_than": "remove_older_than",
    "max_retries": "max_retries",
    "max_retries_interval": "max_retries_interval",
    "schedule_interval": "interval_number",
    "schedule_start_date": "start_date",
    "schedule_end_date": "end_date",
    # The jobs wizard's per-engine, storage and retention fields.
    "exclude": "exclude",
    "one_file_system": "one_file_system",
    "nova_inst_id": "nova_inst_id",
    "cinderbrick_vol_id": "cinderbrick_vol_id",
    "engine": "engine_name",
    "mode": "engine_name",
    "passphrase_ref": "passphrase_ref",
    "keep_last": "keep_last",
    "keep_daily": "keep_daily",
    "keep_weekly": "keep_weekly",
    "keep_monthly": "keep_monthly",
}


def api_error_targets(error):
    """``(form field or None, message)`` for each entry of a ValidationError's errors."""
    errors = getattr(error, "errors", None) or {}
    if not errors:
        return [(None, str(error))]
    targets = []
    for path, message in errors.items():
        leaf = str(path).replace("]", "").replace("[", ".").split(".")[-1]
        field = ERROR_FIELDS.get(leaf)
        if field:
            targets.append((field, message))
        elif not path:
            targets.append((None, message))
        else:
            targets.append((None, f"{path}: {message}"))
    return targets


def map_api_errors(form, error):
    """Put a ValidationError's ``{document path: message}`` onto the matching form fields."""
    for field, message in api_error_targets(error):
        form.add_error(field if field in form.fields else None, message)


def to_api_date(value):
    """An aware datetime as freezer-api's ISO date with seconds, in UTC, without an offset.

    The form reads dates in the user's Horizon time zone; the API document stores UTC so that
    every agent, whatever its local zone, reads the same instant.
    """
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class ScheduleFields(django_forms.Form):
    """The ``job_schedule`` / session ``schedule`` document as typed fields.

    ``schedule_interval`` is freezer-api's "<number> <unit>" or "continuous"; here it is a kind,
    a number and a unit, so a malformed interval cannot be typed at all.  A plain form so that
    both a self-handling form (sessions) and a workflow step (the jobs wizard) can mix it in.
    """

    schedule_kind = forms.ChoiceField(
        label=_("Schedule"),
        choices=SCHEDULE_KINDS,
        error_messages=PICK_ONE,
        initial="once",
        widget=forms.ThemableSelectWidget(attrs={"class": "switchable", "data-slug": "schedule"}),
    )
    interval_number = forms.IntegerField(
        label=_("Every"),
        required=False,
        min_value=1,
        max_value=10000,
        widget=forms.NumberInput(
            attrs={
                "class": "switched",
                "data-switch-on": "schedule",
                "data-schedule-interval": _("Every"),
            }
        ),
    )
    interval_unit = forms.ChoiceField(
        label=_("Unit"),
        choices=INTERVAL_UNITS,
        error_messages=PICK_ONE,
        initial="days",
        required=False,
        widget=forms.ThemableSelectWidget(
            attrs={
                "class": "switched",
                "data-switch-on": "schedule",
                "data-schedule-interval": _("Unit"),
            }
        ),
    )
    start_date = forms.DateTimeField(
        label=_("Start date"),
        required=False,
        widget=DateTimeLocalInput(),
        help_text=_("First run; empty means as soon as the job is started."),
    )
    end_date = forms.DateTimeField(
        label=_("End date"),
        required=False,
        widget=DateTimeLocalInput(),
        help_text=_("No runs after this date; empty means no end."),
    )

    def clean(self):
        data = super().clean()
        kind = data.get("schedule_kind")
        if kind == "interval":
            if not data.get("interval_number"):
                self.add_error("interval_number", _("How often should the job repeat?"))
            if not data.get("interval_unit"):
                self.add_error("interval_unit", _("Pick a unit."))
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end <= start:
            self.add_error("end_date", _("The end date must be after the start date."))
        if end and end <= timezone.now():
            self.add_error("end_date", _("The end date is in the past: the job would never run."))
        return data

    def schedule(self, data):
        """The ``job_schedule`` document for the cleaned data (status is the API's business)."""
        return schedule_document(data)


def schedule_document(data):
    """The ``job_schedule``/``schedule`` document for :class:`ScheduleFields`' cleaned data."""
    schedule = {}
    if data["schedule_kind"] == "interval":
        schedule["schedule_interval"] = f"{data['interval_number']} {data['interval_unit']}"
    elif data["schedule_kind"] == "continuous":
        schedule["schedule_interval"] = "continuous"
    if data.get("start_date"):
        schedule["schedule_start_date"] = to_api_date(data["start_date"])
    if data.get("end_date"):
        schedule["schedule_end_date"] = to_api_date(data["end_date"])
    return schedule


class ScheduleForm(ScheduleFields, forms.SelfHandlingForm):
    """:class:`ScheduleFields` as a Horizon self-handling form (the sessions panel)."""
