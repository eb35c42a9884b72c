"""First proof: Horizon's own TestCase runs under pytest-django with our settings."""

import pathlib

from django.conf import settings
from django.contrib.staticfiles import finders

from tests.dashboards import helpers


class HarnessTests(helpers.TestCase):
    def test_horizon_testcase_runs_under_pytest_django(self):
        self.assertEqual(settings.SETTINGS_MODULE, "tests.settings")
        self.assertIn("freezer_ui", settings.INSTALLED_APPS)
        self.assertEqual(settings.FREEZER_UI_DATABASE, "default")
        self.assertIn("freezer_ui.db_router.FreezerUIRouter", settings.DATABASE_ROUTERS)
        # A real request through Horizon's middleware, as the member of project "1" that
        # Horizon's TestCase logs in (roles member and reader, not admin).
        res = self.client.get("/settings/")
        self.assertEqual(res.status_code, 200)
        user = res.context["request"].user
        self.assertEqual(user.tenant_id, self.tenant.id)
        self.assertFalse(user.has_perms(("openstack.roles.admin",)))

    def test_checkout_serves_root_templates_and_static(self):
        # AppConfig.path points at the repository root in a checkout (freezer_ui/apps.py).
        found = finders.find("freezer_ui/css/freezer_ui.css")
        root = pathlib.Path(__file__).resolve().parents[2]
        self.assertEqual(found, str(root / "static/freezer_ui/css/freezer_ui.css"))
