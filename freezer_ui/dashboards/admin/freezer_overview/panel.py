import horizon
from django.utils.translation import gettext_lazy as _

# Registers the JSON endpoints of the Overview pages (see the project Overview panel).
from freezer_ui.api.rest import stats as _rest_stats  # noqa: F401
from freezer_ui.dashboards import utils


class Overview(horizon.Panel):
    """Every project's backup totals: stored bytes, generations, last success, failures."""

    name = _("Overview")
    slug = "freezer_overview"
    # Horizon checks these on every URL of the panel, not only when drawing the navigation.
    permissions = utils.ADMIN_PERMISSIONS
    policy_rules = (("identity", "admin_required"),)
