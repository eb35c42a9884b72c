# The "Backup and Restore" panel group of the Admin dashboard (all projects, admin role only).
from django.utils.translation import gettext_lazy as _

# Slug of the panel group, used by the admin panel files below.
PANEL_GROUP = "freezer_ui_admin"
# Name shown in the navigation.
PANEL_GROUP_NAME = _("Backup and Restore")
# Dashboard the group belongs to.
PANEL_GROUP_DASHBOARD = "admin"
