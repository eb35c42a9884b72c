import horizon
from django.utils.translation import gettext_lazy as _


class Clients(horizon.Panel):
    """The backup agents (freezer clients) registered in the project."""

    name = _("Clients")
    slug = "freezer_clients"
