"""Admin Backups: every project's backup groups, a Project column and filter, admin only.

Records live in the embedded store (no API mock); only Keystone's project list is mocked, as
in the other admin panel tests, since there is no Keystone here.
"""

from unittest import mock

from django.urls import reverse
from openstack_dashboard import api as dashboard_api
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api import backup_groups
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import Forbidden, Unavailable
from freezer_ui.api.transports.embedded import EmbeddedTransport
from tests.dashboards import helpers

BACKUPS_URL = reverse("horizon:admin:freezer_backups:index")


def store(project_id):
    return FreezerClient(EmbeddedTransport(), project_id=project_id, user_id="u", roles=["member"])


def add(project_id, **meta):
    doc = {
        "backup_name": "etc",
        "hostname": "host-1",
        "engine_name": "tar",
        "storage": "local",
        "container": "/srv/backups",
        "time_stamp": 1_700_000_000,
        "size": 10,
        "freezer_ui_agent": True,
    }
    doc.update(meta)
    return store(project_id).backups.create(doc)


class AdminBackupsTests(helpers.AdminTestCase):
    def setUp(self):
        super().setUp()
        self.first, self.second = self.tenants.list()[:2]
        add(self.first.id, backup_name="web")
        add(self.first.id, backup_name="web", time_stamp=1_700_000_100)
        add(self.second.id, backup_name="<b>db</b>", hostname="db-1")
        add("gone-project", backup_name="orphan", freezer_ui_agent=False)

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_groups_of_every_project_with_project_names(self):
        self.mock_tenant_list.return_value = (self.tenants.list(), False)
        res = self.client.get(BACKUPS_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "freezer_ui/admin/freezer_backups/index.html")
        rows = {(g.project_id, g.backup_name): g for g in res.context["table"].data}
        self.assertEqual(
            set(rows),
            {
                (self.first.id, "web"),
                (self.second.id, "<b>db</b>"),
                ("gone-project", "orphan"),
            },
        )
        self.assertEqual(rows[(self.first.id, "web")].generations, 2)
        self.assertEqual(rows[("gone-project", "orphan")].origin, "upstream")
        self.assertContains(res, self.first.name)
        self.assertContains(res, "gone-project")
        self.assertContains(res, "&lt;b&gt;db&lt;/b&gt;")
        self.assertNotContains(res, "<b>db</b>")

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_filter_by_project_name_and_sort(self):
        self.mock_tenant_list.return_value = (self.tenants.list(), False)
        self.client.post(
            BACKUPS_URL,
            {
                "admin_backup_groups__filter__q": self.second.name,
                "admin_backup_groups__filter__q_field": "project",
            },
        )
        res = self.client.get(BACKUPS_URL)  # the filter is kept in the session
        self.assertEqual([g.backup_name for g in res.context["table"].data], ["<b>db</b>"])
        self.client.post(
            BACKUPS_URL,
            {
                "admin_backup_groups__filter__q": "",
                "admin_backup_groups__filter__q_field": "project",
            },
        )
        res = self.client.get(BACKUPS_URL + "?sort=backup_name&dir=asc")
        self.assertEqual(
            [g.backup_name for g in res.context["table"].data], ["<b>db</b>", "orphan", "web"]
        )

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_unavailable_is_a_message(self):
        self.mock_tenant_list.return_value = (self.tenants.list(), False)
        with mock.patch.object(
            backup_groups, "backup_group_list", side_effect=Unavailable("connection refused")
        ):
            res = self.client.get(BACKUPS_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTrue(
            any("Unable to retrieve backups." in str(m) for m in res.context["messages"])
        )


class MemberTests(helpers.TestCase):
    def test_member_cannot_open_the_admin_panel(self):
        res = self.client.get(BACKUPS_URL)
        self.assertEqual(res.status_code, 403)

    def test_all_projects_is_refused_by_the_api_too(self):
        from openstack_auth import utils as auth_utils

        self.request.user = auth_utils.get_user(self.request)
        with self.assertRaises(Forbidden):
            backup_groups.backup_group_list(self.request, all_projects=True)
