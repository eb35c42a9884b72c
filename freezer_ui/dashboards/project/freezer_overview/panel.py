import horizon
from django.utils.translation import gettext_lazy as _

# Registers the JSON endpoints the Overview charts read (Horizon imports panel modules while it
# builds its URLconf, which is when plugins' REST views must be registered).
from freezer_ui.api.rest import stats as _rest_stats  # noqa: F401


class Overview(horizon.Panel):
    """Jobs, runs, failures and the project's backup usage over time, at a glance."""

    name = _("Overview")
    slug = "freezer_overview"
