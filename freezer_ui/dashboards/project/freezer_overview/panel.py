import horizon
from django.utils.translation import gettext_lazy as _


class Overview(horizon.Panel):
    """Jobs by status and the latest backups of the project, at a glance."""

    name = _("Overview")
    slug = "freezer_overview"
