"""Remote mode end to end, panels included: a job saved through the plugin's remote transport
in a real freezer-api 19.0.0 is run by our agent over HTTP, and the Jobs and Backups panels
show its result.

Keystone is replaced by the conftest's identity filter in front of freezer-api (the token
"project:user:role" becomes the identity); everything else is the shipped freezer-api and
python-freezerclient.  ``freezer.freezerclient`` (the factory the panels go through) is
pointed at that server.
"""

import pytest
from django.test.utils import override_settings
from django.urls import reverse

from freezer_ui.agent.agent import Agent, AgentConfig
from freezer_ui.api import freezer as api_freezer
from tests.agent.conftest import HOST, backup_job, make_tree
from tests.agent.test_remote import remote_client
from tests.dashboards import helpers

pytestmark = pytest.mark.slow


# Remote mode as an operator sets it; the factory is then pointed at the test freezer-api.
@override_settings(FREEZER_UI_API_MODE="remote", FREEZER_UI_API_URL="http://unused.invalid")
class RemoteModePanelsTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        # Horizon's harness refuses every HTTP connection (to catch unmocked API calls); this
        # test talks to a real freezer-api on loopback on purpose.
        from requests.packages.urllib3.connection import HTTPConnection

        HTTPConnection.connect = self._real_conn_request

    @pytest.fixture(autouse=True)
    def _remote(self, freezer_api_url, monkeypatch, tmp_path):
        self.url = freezer_api_url
        self.tmp = tmp_path

        def client_for(request):
            return remote_client(freezer_api_url, request.user.project_id, request.user.id)

        monkeypatch.setattr(api_freezer, "freezerclient", client_for)

    def test_a_job_run_by_our_remote_agent_shows_in_the_panels(self):
        project = self.tenant.id
        agent = Agent(
            remote_client(self.url, project, "agent"),
            AgentConfig(
                state_dir=str(self.tmp / "state"),
                client_id=HOST,
                hostname=HOST,
                progress_interval=0.05,
            ),
        )
        agent.start()  # registers the client in freezer-api, in this project
        src, repo = make_tree(self.tmp / "src", files=5), self.tmp / "repo"
        doc = backup_job(src, repo, name="remote-panels")
        doc["description"] = "remote panels nightly"
        # Saved the way the panels save: through the seam, on the remote transport.
        request = self.client.get(reverse("horizon:project:freezer_jobs:index")).wsgi_request
        job_id = api_freezer.job_create(request, doc)

        assert agent.poll() == [job_id]

        index = self.client.get(reverse("horizon:project:freezer_jobs:index"))
        self.assertEqual(index.status_code, 200)
        row = next(r for r in index.context["table"].data if r.id == job_id)
        self.assertEqual((row.status, row.result), ("scheduled", "success"))
        self.assertContains(index, "remote panels nightly")

        detail = self.client.get(reverse("horizon:project:freezer_jobs:detail", args=[job_id]))
        self.assertEqual(detail.status_code, 200)
        self.assertContains(detail, "remote panels nightly")

        backups = self.client.get(reverse("horizon:project:freezer_backups:index"))
        self.assertEqual(backups.status_code, 200)
        self.assertContains(backups, "remote-panels")
        record = next(
            b
            for b in api_freezer.backup_list(request, limit=100)[0]
            if b.backup_name == "remote-panels"
        )
        self.assertEqual(record.status, "available")
        self.assertTrue(record.generation_id)
