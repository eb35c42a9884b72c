import horizon
from django.utils.translation import gettext_lazy as _


class Backups(horizon.Panel):
    """The project's backup records: one row per generation a job wrote."""

    name = _("Backups")
    slug = "freezer_backups"
