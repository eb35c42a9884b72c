"""Admin Clients: every project's registered agents, from the embedded store (Keystone mocked)."""

from django.urls import reverse
from openstack_dashboard import api as dashboard_api
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.dashboards.project.freezer_clients import tables as project_tables
from tests.dashboards import helpers
from tests.dashboards.admin.test_admin_panels import cells

URL = reverse("horizon:admin:freezer_clients:index")


class AdminClientsTests(helpers.AdminTestCase):
    def setUp(self):
        super().setUp()
        self.first, self.second = self.tenants.list()[:2]
        for project, host, description in (
            (self.first, "web-1", "front <script>x</script>"),
            (self.second, "db-1", "database"),
            (self.second, "db-2", "replica"),
        ):
            FreezerClient(EmbeddedTransport(), project_id=project.id, user_id="u").clients.create(
                {"client_id": host, "hostname": host, "description": description}
            )

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_every_projects_agents_with_project_names(self):
        self.mock_tenant_list.return_value = (self.tenants.list(), False)
        res = self.client.get(URL)
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "freezer_ui/admin/freezer_clients/index.html")
        table = res.context["table"]
        self.assertIsInstance(table, project_tables.ClientsTable)  # the project table, reused
        self.assertEqual(
            list(table.columns), ["project", "hostname", "client_id", "description", "engines"]
        )
        self.assertEqual(
            sorted((c.project_id, c.hostname) for c in table.data),
            sorted([(self.first.id, "web-1"), (self.second.id, "db-1"), (self.second.id, "db-2")]),
        )
        rendered = cells(res)
        self.assertIn(self.first.name, rendered)
        self.assertIn(self.second.name, rendered)
        self.assertIn("front &lt;script&gt;x&lt;/script&gt;", rendered)
        self.assertNotContains(res, "<script>x</script>")
        # Read-only: an agent is unregistered from its own project.
        self.assertNotContains(res, "admin_clients__delete")

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_filter_by_project(self):
        self.mock_tenant_list.return_value = (self.tenants.list(), False)
        self.client.post(
            URL,
            {
                "admin_clients__filter__q": self.second.name,
                "admin_clients__filter__q_field": "project",
            },
        )
        res = self.client.get(URL)
        self.assertEqual(sorted(c.hostname for c in res.context["table"].data), ["db-1", "db-2"])
