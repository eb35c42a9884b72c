import horizon
from django.utils.translation import gettext_lazy as _

from freezer_ui.dashboards import utils


class Clients(horizon.Panel):
    """Every project's registered backup agents (freezer clients); admin role only."""

    name = _("Clients")
    slug = "freezer_clients"
    # Horizon checks these on every URL of the panel, not only when drawing the navigation.
    permissions = utils.ADMIN_PERMISSIONS
    policy_rules = (("identity", "admin_required"),)
