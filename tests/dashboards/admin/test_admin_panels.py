"""All-projects Jobs and Backups: the admin role is enforced server-side, twice."""

import re

from django.urls import reverse
from horizon.test.helpers import IsHttpRequest
from openstack_dashboard import api as dashboard_api
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from tests.dashboards import helpers


def cells(res):
    """Text of every table cell, whitespace collapsed."""
    return [
        " ".join(c.split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", res.content.decode(), re.S)
    ]


JOBS_URL = reverse("horizon:admin:freezer_jobs:index")
BACKUPS_URL = reverse("horizon:admin:freezer_backups:index")


class AdminPanelTests(helpers.AdminTestCase):
    def tenant_page(self):
        return self.tenants.list(), False

    @create_mocks({api_freezer: ["job_list"], dashboard_api.keystone: ["tenant_list"]})
    def test_admin_sees_every_project_with_its_name(self):
        first, second = self.tenants.list()[:2]
        self.mock_tenant_list.return_value = self.tenant_page()
        self.mock_job_list.return_value = (
            [
                helpers.job(job_id="a", project_id=first.id),
                helpers.job(job_id="b", project_id=second.id, description="<b>x</b>"),
                helpers.job(job_id="c", project_id="gone-project"),
            ],
            True,
        )
        res = self.client.get(JOBS_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "freezer_ui/admin/freezer_jobs/index.html")
        self.assertEqual(res.context["table"].columns["project"].verbose_name, "Project")
        rendered = cells(res)
        self.assertIn(first.name, rendered)
        self.assertIn(second.name, rendered)
        self.assertIn("gone-project", rendered)  # a deleted project shows its ID
        self.assertIn("&lt;b&gt;x&lt;/b&gt;", rendered)
        self.assertNotContains(res, "<b>x</b>")
        self.assertContains(res, 'href="?offset=3"')
        self.mock_job_list.assert_called_once_with(
            IsHttpRequest(), limit=20, offset=0, search=None, all_projects=True
        )

    @create_mocks({api_freezer: ["job_list"], dashboard_api.keystone: ["tenant_list"]})
    def test_filter_by_project_name(self):
        target = self.tenants.list()[1]
        self.mock_tenant_list.return_value = self.tenant_page()
        self.mock_job_list.return_value = ([helpers.job(project_id=target.id)], False)
        self.client.post(
            JOBS_URL,
            {"admin_jobs__filter__q": target.name, "admin_jobs__filter__q_field": "project"},
        )
        res = self.client.get(JOBS_URL)  # the filter is kept in the session
        self.assertEqual(res.status_code, 200)
        self.assertEqual(
            self.mock_job_list.call_args.kwargs["search"],
            {"match": [{"project_id": target.id}]},
        )
        self.assertEqual(len(res.context["table"].data), 1)

    @create_mocks({api_freezer: ["job_list"], dashboard_api.keystone: ["tenant_list"]})
    def test_api_refusal_is_a_message_not_a_500(self):
        self.mock_tenant_list.return_value = self.tenant_page()
        self.mock_job_list.side_effect = api_exceptions.Forbidden(
            "listing all projects requires the admin role"
        )
        res = self.client.get(JOBS_URL)
        self.assertEqual(res.status_code, 200)
        self.assertMessageCount(res, error=1)


class MemberRefusedTests(helpers.TestCase):
    @create_mocks(
        {api_freezer: ["job_list", "backup_list"], dashboard_api.keystone: ["tenant_list"]}
    )
    def test_member_cannot_open_admin_urls(self):
        for url in (JOBS_URL, BACKUPS_URL, JOBS_URL + "?offset=20"):
            res = self.client.get(url)
            # Horizon refuses a logged-in user without the role, before the view runs.
            self.assertEqual(res.status_code, 403, url)
        self.mock_job_list.assert_not_called()
        self.mock_backup_list.assert_not_called()
        self.mock_tenant_list.assert_not_called()

    def test_member_does_not_see_admin_panels_in_the_navigation(self):
        res = self.client.get(reverse("horizon:project:freezer_restore:index"))
        self.assertNotContains(res, JOBS_URL)
