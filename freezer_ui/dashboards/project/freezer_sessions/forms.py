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
