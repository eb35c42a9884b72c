import horizon
from django.utils.translation import gettext_lazy as _


class Secrets(horizon.Panel):
    """Keys: the project's repository passphrases and storage credentials (write-only)."""

    name = _("Keys")
    slug = "freezer_secrets"
