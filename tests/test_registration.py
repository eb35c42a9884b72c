"""Every panel is registered by its slug, in the right dashboard, group and class.

The cheapest proof that the enabled files are right (octavia-dashboard's registration test).
"""

import horizon
from django.urls import get_resolver

from freezer_ui.dashboards.admin.freezer_backups import panel as admin_backups
from freezer_ui.dashboards.admin.freezer_clients import panel as admin_clients
from freezer_ui.dashboards.admin.freezer_jobs import panel as admin_jobs
from freezer_ui.dashboards.admin.freezer_overview import panel as admin_overview
from freezer_ui.dashboards.project.freezer_backups import panel as backups
from freezer_ui.dashboards.project.freezer_clients import panel as clients
from freezer_ui.dashboards.project.freezer_jobs import panel as jobs
from freezer_ui.dashboards.project.freezer_overview import panel as overview
from freezer_ui.dashboards.project.freezer_restore import panel as restore
from freezer_ui.dashboards.project.freezer_secrets import panel as secrets
from freezer_ui.dashboards.project.freezer_sessions import panel as sessions
from tests.dashboards import helpers

PROJECT_PANELS = {
    "freezer_overview": overview.Overview,
    "freezer_jobs": jobs.Jobs,
    "freezer_backups": backups.Backups,
    "freezer_restore": restore.Restore,
    "freezer_clients": clients.Clients,
    "freezer_sessions": sessions.Sessions,
    "freezer_secrets": secrets.Secrets,
}
ADMIN_PANELS = {
    "freezer_jobs": admin_jobs.Jobs,
    "freezer_backups": admin_backups.Backups,
    "freezer_overview": admin_overview.Overview,
    "freezer_clients": admin_clients.Clients,
}


class RegistrationTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        # Horizon registers dashboards and panels while the URLconf loads (autodiscovery).
        get_resolver().url_patterns  # noqa: B018

    def _check(self, dashboard_slug, group_slug, panels):
        dashboard = horizon.get_dashboard(dashboard_slug)
        for slug, cls in panels.items():
            panel = dashboard.get_panel(slug)
            self.assertIsInstance(panel, cls)
            # One word everywhere: slug, folder, and the template folder the views use.
            self.assertEqual(cls.__module__.split(".")[-2], slug)
        group = dashboard.get_panel_group(group_slug)
        self.assertEqual(str(group.name), "Backup and Restore")
        self.assertEqual([p.slug for p in group], list(panels))

    def test_project_panels(self):
        self._check("project", "freezer_ui", PROJECT_PANELS)

    def test_admin_panels(self):
        self._check("admin", "freezer_ui_admin", ADMIN_PANELS)

    def test_admin_panels_require_the_admin_role(self):
        for cls in ADMIN_PANELS.values():
            self.assertEqual(cls.permissions, ("openstack.roles.admin",))

    def test_own_panels_do_not_shadow_horizon_panels(self):
        # Horizon's project dashboard has its own "overview" and "backups" panels.
        project = horizon.get_dashboard("project")
        for slug in ("overview", "backups"):
            module = project.get_panel(slug).__module__
            self.assertTrue(module.startswith("openstack_dashboard."), module)
