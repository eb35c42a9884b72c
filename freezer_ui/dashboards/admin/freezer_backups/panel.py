import horizon
from django.utils.translation import gettext_lazy as _

from freezer_ui.dashboards import utils


class Backups(horizon.Panel):
    """Every project's backups; admin role only."""

    name = _("Backups")
    slug = "freezer_backups"
    # Horizon checks these on every URL of the panel, not only when drawing the navigation.
    permissions = utils.ADMIN_PERMISSIONS
    policy_rules = (("identity", "admin_required"),)
