import horizon
from django.utils.translation import gettext_lazy as _


class Restore(horizon.Panel):
    """Where restores start: the generations that can be restored."""

    name = _("Restore")
    slug = "freezer_restore"
