"""First proof: Horizon's own TestCase runs under pytest-django with our settings."""

from django.conf import settings

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
