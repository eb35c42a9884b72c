import horizon
from django.utils.translation import gettext_lazy as _

# The wizard's tree picker reads folders from the browse REST endpoint; importing the package
# registers it with Horizon's /api/ URLconf.
import freezer_ui.api.rest  # noqa: F401


class Restore(horizon.Panel):
    """Where restores start: pick a backup, then the restore wizard."""

    name = _("Restore")
    slug = "freezer_restore"
