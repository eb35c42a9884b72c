import horizon
from django.utils.translation import gettext_lazy as _

# The generation browser's JSON endpoints (@urls.register) must exist before the first request
# reaches /api/; the panel module is imported when Horizon builds its URLs.
import freezer_ui.api.rest.browse  # noqa: F401


class Backups(horizon.Panel):
    """The project's backups: one row per backup (a series of generations), a timeline per
    backup, and a file browser per generation."""

    name = _("Backups")
    slug = "freezer_backups"
