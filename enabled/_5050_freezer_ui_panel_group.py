# The "Backup and Restore" panel group of the Project dashboard; also installs the app.
from django.utils.translation import gettext_lazy as _

from freezer_ui import exceptions

# Slug of the panel group, used by the panel files below.
PANEL_GROUP = "freezer_ui"
# Name shown in the navigation.
PANEL_GROUP_NAME = _("Backup and Restore")
# Dashboard the group belongs to.
PANEL_GROUP_DASHBOARD = "project"
# Django app that carries the templates, static files and models.  The package name, not the
# AppConfig path: Horizon also uses these names as packages (translations, static discovery),
# and Django picks freezer_ui.apps.FreezerUIConfig, the module's only AppConfig, by itself.
ADD_INSTALLED_APPS = ["freezer_ui"]
# Which API errors Horizon shows as messages, as "not found", or as a forced logout.
ADD_EXCEPTIONS = {
    "recoverable": exceptions.RECOVERABLE,
    "not_found": exceptions.NOT_FOUND,
    "unauthorized": exceptions.UNAUTHORIZED,
}
