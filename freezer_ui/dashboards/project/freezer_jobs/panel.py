import horizon
from django.utils.translation import gettext_lazy as _


class Jobs(horizon.Panel):
    """The project's backup jobs: list, create, edit, start, stop, delete."""

    name = _("Jobs")
    slug = "freezer_jobs"
