"""Admin Overview: per-project totals from real records in the embedded store.

Only Keystone's project list is mocked (Horizon's test harness has no Keystone); every number
comes from backup and job records created here.
"""

import json
import re
import time

from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from openstack_dashboard import api as dashboard_api
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api import stats
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import FreezerAPIError
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.dashboards import utils
from tests.dashboards import helpers
from tests.dashboards.project.test_overview import TOTALS_URL, ajax_get, backup

URL = reverse("horizon:admin:freezer_overview:index")
DAY = 86400


def size(value):
    # As the cells are read: whitespace (filesizeformat's no-break space) collapsed.
    return " ".join(str(filesizeformat(value)).split())


def rows(res):
    """Cells of the totals table, per row (whitespace collapsed)."""
    html = res.content.decode()
    table = html[html.index('id="project_totals"') :]
    table = table[: table.index("</table>")]
    body = table[table.index("<tbody>") :]
    return [
        [" ".join(c.split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


class AdminOverviewTests(helpers.AdminTestCase):
    def setUp(self):
        super().setUp()
        self.first, self.second = self.tenants.list()[:2]
        self.now = int(time.time())
        self.a = FreezerClient(EmbeddedTransport(), project_id=self.first.id, user_id="u1")
        self.b = FreezerClient(EmbeddedTransport(), project_id=self.second.id, user_id="u2")
        # First project: three generations, a failure inside the 7-day window and one outside.
        backup(self.a, self.now - 3 * DAY, size=9000, stored_bytes=5000, new_bytes=9000)
        backup(self.a, self.now - 2 * DAY, size=9000, stored_bytes=700, new_bytes=900)
        self.last_a = self.now - 3600
        backup(self.a, self.last_a, size=9000, stored_bytes=300, new_bytes=500)
        backup(self.a, self.now - 6 * DAY, status="error", error="no space")
        backup(self.a, self.now - 8 * DAY, status="error", error="too old to count")
        # Second project: one generation; its name carries markup.
        backup(self.b, self.now - 100, size=10, stored_bytes=2 * 1024**3, new_bytes=10)
        # A project Keystone no longer knows: shown by ID.
        gone = FreezerClient(EmbeddedTransport(), project_id="gone-project", user_id="u3")
        backup(gone, self.now - 100, size=1, stored_bytes=1, new_bytes=1)

    def projects(self, second_name=None):
        projects = self.tenants.list()
        if second_name:
            projects[1].name = second_name
        return projects, False

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_totals_equal_the_records(self):
        self.mock_tenant_list.return_value = self.projects("<b>evil</b>")
        res = self.client.get(URL)
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "freezer_ui/admin/freezer_overview/index.html")
        by_project = {e["project_id"]: e for e in res.context["table"].data}
        first = by_project[self.first.id]
        self.assertEqual(
            (first["stored_bytes"], first["generations"], first["failures"]), (6000, 3, 1)
        )
        self.assertEqual(first["last_success"], self.last_a)
        self.assertEqual(by_project[self.second.id]["stored_bytes"], 2 * 1024**3)
        self.assertEqual(by_project["gone-project"]["project_name"], "gone-project")
        table = rows(res)
        # Most stored first; the name escaped; sizes, dates and counts as the records say.
        self.assertEqual(table[0][0], "&lt;b&gt;evil&lt;/b&gt;")
        self.assertEqual(table[0][1], size(2 * 1024**3))
        self.assertEqual(
            table[1],
            [
                self.first.name,
                size(6000),
                "3",
                utils.format_datetime(utils.timestamp_to_datetime(self.last_a)),
                "1",
                "0",
                "0",
            ],
        )
        self.assertNotContains(res, "<b>evil</b>")
        # The chart's data: embedded as JSON (escaped for a script element), not inlined.
        data = re.search(
            r'<script id="freezer-project-totals-data" type="application/json">(.*?)</script>',
            res.content.decode(),
            re.S,
        ).group(1)
        self.assertNotIn("<b>", data)
        self.assertEqual(
            json.loads(data)[:2],
            [
                {"name": "<b>evil</b>", "stored_bytes": 2 * 1024**3},
                {"name": self.first.name, "stored_bytes": 6000},
            ],
        )
        self.assertContains(res, 'id="freezer-chart-projects"')

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_filter_by_project_name(self):
        self.mock_tenant_list.return_value = self.projects()
        self.client.post(
            URL,
            {
                "project_totals__filter__q": self.first.name.upper(),
                "project_totals__filter__q_field": "project",
            },
        )
        res = self.client.get(URL)  # the filter is kept in the session
        self.assertEqual([e["project_id"] for e in res.context["table"].data], [self.first.id])

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_running_jobs_are_counted(self):
        self.mock_tenant_list.return_value = self.projects()
        self.a.clients.create({"client_id": "host-1", "hostname": "host-1"})
        doc = helpers.job().to_dict()
        for key in ("job_id", "project_id", "user_id"):
            doc.pop(key)
        job_id = self.a.jobs.create(doc)
        self.a.jobs.create(doc)
        self.a.jobs.update(
            job_id, {"job_schedule": {"schedule_interval": "6 hours", "status": "running"}}
        )
        res = self.client.get(URL)
        first = next(e for e in res.context["table"].data if e["project_id"] == self.first.id)
        self.assertEqual((first["jobs"], first["running_jobs"]), (2, 1))

    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_totals_endpoint_for_the_admin(self):
        self.mock_tenant_list.return_value = self.projects()
        res = ajax_get(self.client, TOTALS_URL)
        self.assertEqual(res.status_code, 200)
        items = {e["project_id"]: e for e in json.loads(res.content)["items"]}
        self.assertEqual(items[self.first.id]["stored_bytes"], 6000)
        self.assertEqual(items[self.first.id]["failures"], 1)


class AdminOverviewEmptyTests(helpers.AdminTestCase):
    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_no_records_says_so(self):
        self.mock_tenant_list.return_value = (self.tenants.list(), False)
        res = self.client.get(URL)
        self.assertEqual(res.status_code, 200)
        self.assertEqual(list(res.context["table"].data), [])
        self.assertContains(res, "No project has backup jobs or backups yet.")
        self.assertEqual(res.context["chart_data"], [])


class AdminOverviewRefusedTests(helpers.AdminTestCase):
    # freezer-api 19.0.0 lists backups one project at a time: in remote mode project_totals
    # gets its 501.  The page says so; it does not fail.
    @create_mocks({dashboard_api.keystone: ["tenant_list"], stats: ["project_totals"]})
    def test_service_refusal_is_a_message(self):
        self.mock_tenant_list.return_value = (self.tenants.list(), False)
        self.mock_project_totals.side_effect = FreezerAPIError(
            "listing every project's backups is not supported", status_code=501
        )
        res = self.client.get(URL)
        self.assertEqual(res.status_code, 200)
        self.assertMessageCount(res, error=1)
        self.assertNotContains(res, 'id="freezer-chart-projects"')
        self.assertNotContains(res, "No project has backup jobs or backups yet.")
        res = ajax_get(self.client, TOTALS_URL)
        self.assertEqual(res.status_code, 501)


class MemberRefusedTests(helpers.TestCase):
    @create_mocks({dashboard_api.keystone: ["tenant_list"]})
    def test_member_gets_403_and_no_data(self):
        backup(
            FreezerClient(EmbeddedTransport(), project_id="other", user_id="u"),
            int(time.time()),
            backup_name="secret-of-other",
        )
        for url in (URL, reverse("horizon:admin:freezer_clients:index")):
            res = self.client.get(url)
            self.assertEqual(res.status_code, 403, url)
            self.assertNotContains(res, "secret-of-other", status_code=403)
        self.mock_tenant_list.assert_not_called()
        res = ajax_get(self.client, TOTALS_URL)
        self.assertEqual(res.status_code, 403)

    def test_member_navigation_has_no_admin_overview(self):
        res = self.client.get(reverse("horizon:project:freezer_overview:index"))
        self.assertNotContains(res, URL)
