import horizon
from django.utils.translation import gettext_lazy as _

from freezer_ui.dashboards import utils


class Jobs(horizon.Panel):
    """Every project's backup jobs; admin role only."""

    name = _("Jobs")
    slug = "freezer_jobs"
    # Horizon checks these on every URL of the panel, not only when drawing the navigation.
    permissions = utils.ADMIN_PERMISSIONS
    policy_rules = (("identity", "admin_required"),)
