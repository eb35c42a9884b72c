"""Django application config for freezer-ui."""

import importlib.metadata
import os

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def resource_root() -> str:
    """Folder that holds ``templates/`` and ``static/`` for this install.

    A wheel carries them inside the package (setup.py maps the root folders there); a checkout
    keeps them at the repository root, as the design card asks.  Django's app-directories
    template loader and static-files finder both read ``AppConfig.path``, so pointing that one
    attribute at the right folder serves both layouts without copying or symlinking anything.
    """
    if os.path.isdir(os.path.join(_PACKAGE_DIR, "templates")):
        return _PACKAGE_DIR
    return os.path.dirname(_PACKAGE_DIR)


def _conflicting_distribution() -> str | None:
    # freezer-web-ui installs the same import package; both at once means one silently
    # overwrote the other's files, so refuse to start rather than serve a mix of the two.
    try:
        dist = importlib.metadata.distribution("freezer-web-ui")
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"freezer-web-ui {dist.version}"


class FreezerUIConfig(AppConfig):
    name = "freezer_ui"
    label = "freezer_ui"
    verbose_name = "Backup and Restore"
    default_auto_field = "django.db.models.BigAutoField"
    path = resource_root()

    def ready(self) -> None:
        conflict = _conflicting_distribution()
        if conflict:
            raise ImproperlyConfigured(
                f"{conflict} is installed in this environment. freezer-ui replaces it and uses "
                "the same import package 'freezer_ui'; uninstall it (pip uninstall "
                "freezer-web-ui freezer-ui, then pip install freezer-ui) and remove its "
                "_505x_freezer_*.py files from openstack_dashboard/local/enabled/."
            )
