import horizon
from django.utils.translation import gettext_lazy as _


class Sessions(horizon.Panel):
    """Sessions: groups of jobs that run together (e.g. on every node of a service at once)."""

    name = _("Sessions")
    slug = "freezer_sessions"
