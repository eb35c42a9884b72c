"""The restore wizard, its JSON endpoints, the progress page and the restore sources registry.

Horizon's harness (a logged-in member of project "1"); the API seam (``api_freezer``) is
patched, so these tests check what the wizard asks of the API and what it refuses before
asking.  The browser story (tests/browser/test_story.py) runs the same wizard for real.
"""

import copy
import datetime
import json
import logging
import os
import tempfile
from unittest import mock

from django.contrib.messages import get_messages
from django.test import override_settings
from django.urls import reverse
from horizon.test.helpers import IsHttpRequest
from openstack_dashboard.test.helpers import create_mocks

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import resources, restore_sources
from tests.dashboards import helpers

INDEX_URL = reverse("horizon:project:freezer_restore:index")
WIZARD_URL = reverse("horizon:project:freezer_restore:wizard")
PAYLOAD = "<img src=x onerror=alert(1)>"

# 2030-01-01 10:00, 11:00 and 12:00 UTC
T1, T2, T3 = 1893492000, 1893495600, 1893499200


def record(backup_id, generation_id, time_stamp, status="available", **meta):
    """A backup record as our agent writes it (``freezer_ui_agent`` in its metadata)."""
    doc = copy.deepcopy(helpers.BACKUP_DOC)
    doc.update(backup_id=backup_id, status=status)
    doc["backup_metadata"].update(
        freezer_ui_agent=True,
        generation_id=generation_id,
        time_stamp=time_stamp,
        files=3,
        size=4096,
        **meta,
    )
    return resources.Backup(doc)


def series():
    """Three generations of one backup, and one record of another series (other host)."""
    return [
        record("b-3", "gen-3", T3),
        record("b-1", "gen-1", T1),
        record("b-2", "gen-2", T2),
        record("b-x", "gen-x", T2, hostname="host-2"),
    ]


def wizard_data(**overrides):
    data = {
        "backup_id": "b-3",
        "when": "generation",
        "generation_id": "gen-2",
        "point_in_time": "",
        "resolved_generation": "",
        "scope": "all",
        "paths": "",
        "client_id": "host-1",
        "target": "/tmp/freezer-ui-restore-wizard-new",
        "overwrite": "never",
        "confirm": "on",
    }
    data.update(overrides)
    return data


class WizardTestCase(helpers.TestCase):
    def mock_series(self, records=None):
        records = series() if records is None else records
        by_id = {r.id: r for r in records}

        def get(request, backup_id):
            if backup_id not in by_id:
                raise api_exceptions.NotFound("no such backup")
            return by_id[backup_id]

        self.mock_backup_get.side_effect = get
        self.mock_backup_list.return_value = (records, False)

    def post(self, **overrides):
        return self.client.post(WIZARD_URL, wizard_data(**overrides))


class WizardRenderTests(WizardTestCase):
    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list"]})
    def test_backup_id_preselects_the_backup_and_lists_its_generations_newest_first(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        res = self.client.get(WIZARD_URL + "?backup_id=b-3")
        self.assertEqual(res.status_code, 200, [str(m) for m in get_messages(res.wsgi_request)])
        self.assertTemplateUsed(res, "freezer_ui/project/freezer_restore/wizard.html")
        html = res.content.decode()
        positions = [html.index(f'value="{g}"') for g in ("gen-3", "gen-2", "gen-1")]
        self.assertEqual(positions, sorted(positions))
        self.assertNotIn('value="gen-x"', html)  # another host's series
        # Every post (step validations included) carries the backup in a hidden field.
        self.assertRegex(html, r'<input type="hidden" name="backup_id" value="b-3"')
        self.assertIn('value="host-1"', html)  # the project's agent
        self.assertIn("restore_wizard.js", html)
        # The series is looked up by exact fields of the preselected record.
        search = self.mock_backup_list.call_args.kwargs["search"]
        self.assertIn({"hostname": "host-1"}, search["match"])

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list"]})
    def test_user_data_is_escaped(self):
        self.mock_series([record("b-3", "gen-3", T3, backup_name=PAYLOAD)])
        self.mock_client_list.return_value = ([helpers.client(hostname=PAYLOAD)], False)
        res = self.client.get(WIZARD_URL + "?backup_id=b-3")
        self.assertNotContains(res, PAYLOAD)
        self.assertContains(res, "&lt;img src=x onerror=alert(1)&gt;")

    @create_mocks({api_freezer: ["backup_get", "backup_list"]})
    def test_another_projects_backup_id_shows_nothing_of_it(self):
        # The API answers NotFound for another project's ID; the wizard says "no such backup
        # in this project" and shows none of its data.
        self.mock_series()
        res = self.client.get(WIZARD_URL + "?backup_id=other-project-backup")
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_backup_get.assert_called_once_with(IsHttpRequest(), "other-project-backup")
        self.mock_backup_list.assert_not_called()
        messages = [str(m) for m in get_messages(res.wsgi_request)]
        self.assertEqual(len(messages), 1)
        self.assertIn("No such backup in this project", messages[0])

    @create_mocks({api_freezer: ["backup_get", "backup_list"]})
    def test_no_backup_id_sends_back_to_the_list(self):
        res = self.client.get(WIZARD_URL)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_backup_get.assert_not_called()

    @create_mocks({api_freezer: ["backup_get", "backup_list"]})
    def test_failed_backup_and_upstream_records_are_refused(self):
        self.mock_series([record("b-e", "gen-e", T1, status="error"), helpers.backup()])
        self.assertRedirectsNoFollow(self.client.get(WIZARD_URL + "?backup_id=b-e"), INDEX_URL)
        # helpers.backup() is not marked as written by our agent: no source handles it
        # (the legacy source of another engineer may; here it is not importable or says no).
        with mock.patch.object(
            restore_sources, "BUILTIN_SOURCES", restore_sources.BUILTIN_SOURCES[:1]
        ):
            res = self.client.get(WIZARD_URL + "?backup_id=backup-1")
        self.assertRedirectsNoFollow(res, INDEX_URL)


class WizardSubmitTests(WizardTestCase):
    def setUp(self):
        super().setUp()
        self.scratch = tempfile.mkdtemp(prefix="freezer-ui-wizard-")
        self.addCleanup(lambda: os.path.isdir(self.scratch) and _rmtree(self.scratch))

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_confirm_creates_one_restore_job_that_runs_now(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.return_value = "job-9"
        target = os.path.join(self.scratch, "new")
        res = self.post(
            target=target,
            scope="selected",
            paths=json.dumps(["etc", "etc/hosts", "./var//log/"]),
            overwrite="if-newer",
        )
        self.assertRedirectsNoFollow(
            res, reverse("horizon:project:freezer_restore:progress", args=["job-9"])
        )
        (call,) = self.mock_job_create.call_args_list
        doc = call.args[1]
        self.assertEqual(doc["client_id"], "host-1")
        self.assertEqual(doc["job_schedule"], {"event": "start"})
        (entry,) = doc["job_actions"]
        self.assertEqual(entry["max_retries"], 0)
        self.assertEqual(
            entry["freezer_action"],
            {
                "action": "restore",
                "mode": "fs",
                "engine_name": "tar",
                "backup_name": "etc",
                "hostname": "host-1",
                "storage": "local",
                "container": "/srv/backups",
                "restore_abs_path": target,
                "generation_id": "gen-2",
                "overwrite": "if-newer",
                # etc/hosts is inside the selected etc; paths are normalised.
                "paths": ["etc", "var/log"],
            },
        )
        self.assertFalse(os.path.exists(target))  # the dashboard writes nothing itself

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_target_outside_the_allowed_roots_is_refused(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        with override_settings(FREEZER_UI_ALLOWED_ROOTS=["/srv/restores"]):
            for bad, why in (
                ("/etc/cron.d", "outside the directories restores may write to"),
                ("/srv/restores/../../etc", "outside the directories restores may write to"),
                ("relative/dir", "Give an absolute path"),
            ):
                res = self.post(target=bad)
                self.assertEqual(res.status_code, 200, bad)
                errors = res.context["workflow"].get_step("target").action.errors
                self.assertIn(why, str(errors["target"]), bad)
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_existing_target_with_overwrite_never_is_refused_and_untouched(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        with open(os.path.join(self.scratch, "keep.txt"), "w") as f:
            f.write("mine")
        res = self.post(target=self.scratch, overwrite="never")
        self.assertEqual(res.status_code, 200)
        errors = res.context["workflow"].get_step("target").action.errors
        self.assertIn("already exists and is not empty", str(errors["target"]))
        self.mock_job_create.assert_not_called()
        with open(os.path.join(self.scratch, "keep.txt")) as f:
            self.assertEqual(f.read(), "mine")
        # The same target with another policy, or an empty existing directory, is accepted.
        self.mock_job_create.return_value = "job-1"
        self.assertEqual(self.post(target=self.scratch, overwrite="always").status_code, 302)
        empty = os.path.join(self.scratch, "empty")
        os.mkdir(empty)
        self.assertEqual(self.post(target=empty, overwrite="never").status_code, 302)

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_existing_target_is_left_to_the_agent_in_remote_mode(self):
        # The agent's host is another machine: what exists here says nothing about it.
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.return_value = "job-1"
        with open(os.path.join(self.scratch, "keep.txt"), "w") as f:
            f.write("mine")
        with override_settings(FREEZER_UI_API_MODE="remote"):
            self.assertEqual(self.post(target=self.scratch).status_code, 302)

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_point_in_time_before_the_first_generation_is_an_error(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        res = self.post(when="point_in_time", point_in_time="2029-12-31T23:00")
        self.assertEqual(res.status_code, 200)
        errors = res.context["workflow"].get_step("generation").action.errors
        self.assertIn("before the first generation", str(errors["point_in_time"]))
        self.assertIn("2030-01-01 10:00:00", str(errors["point_in_time"]))
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_point_in_time_uses_exactly_the_generation_shown(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.return_value = "job-2"
        # 11:30 resolves to the 11:00 generation (gen-2).  Shown something else (a backup
        # finished meanwhile, or a tampered post): refused, naming the real one.
        res = self.post(
            when="point_in_time", point_in_time="2030-01-01T11:30", resolved_generation="gen-3"
        )
        errors = res.context["workflow"].get_step("generation").action.errors
        self.assertIn("resolves to the generation of 2030-01-01 11:00:00", str(errors))
        self.mock_job_create.assert_not_called()
        res = self.post(
            when="point_in_time", point_in_time="2030-01-01T11:30", resolved_generation="gen-2"
        )
        self.assertEqual(res.status_code, 302)
        action = self.mock_job_create.call_args.args[1]["job_actions"][0]["freezer_action"]
        self.assertEqual(action["generation_id"], "gen-2")
        self.assertNotIn("restore_from_date", action)

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_deleted_generation_is_an_error(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        # The page offered gen-2; its record was deleted before the user confirmed.
        self.mock_backup_list.return_value = ([r for r in series() if r.id != "b-2"], False)
        res = self.post(generation_id="gen-2")
        self.assertEqual(res.status_code, 200)
        errors = res.context["workflow"].get_step("generation").action.errors
        self.assertIn("This generation no longer exists", str(errors["generation_id"]))
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_selected_paths_must_stay_inside_the_backup(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        for bad in (["../etc"], ["/etc/passwd"], ["a/../../b"], [], "not json", [3]):
            raw = bad if isinstance(bad, str) else json.dumps(bad)
            res = self.post(scope="selected", paths=raw)
            self.assertEqual(res.status_code, 200, bad)
            self.assertFalse(res.context["workflow"].get_step("paths").action.is_valid(), bad)
        self.mock_job_create.assert_not_called()

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_api_refusal_is_shown_on_the_field_it_names(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.side_effect = api_exceptions.ValidationError(
            {"job_actions.0.freezer_action.restore_abs_path": "must be inside /srv"}
        )
        res = self.post()
        self.assertEqual(res.status_code, 200)
        errors = res.context["workflow"].get_step("target").action.errors
        self.assertIn("must be inside /srv", str(errors["target"]))

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_unconfirmed_restore_is_not_created(self):
        self.mock_series()
        self.mock_client_list.return_value = ([helpers.client()], False)
        data = wizard_data()
        del data["confirm"]
        res = self.client.post(WIZARD_URL, data)
        self.assertEqual(res.status_code, 200)
        self.mock_job_create.assert_not_called()


def _rmtree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class ResolveEndpointTests(WizardTestCase):
    def url(self, backup_id="b-3"):
        return reverse("horizon:project:freezer_restore:resolve", args=[backup_id])

    @create_mocks({api_freezer: ["backup_get", "backup_list"]})
    def test_resolves_to_the_newest_generation_at_or_before(self):
        self.mock_series()
        res = self.client.get(self.url(), {"at": "2030-01-01T11:59"})
        self.assertEqual(res.status_code, 200)
        self.assertEqual(res.json()["generation"]["id"], "gen-2")
        self.assertEqual(res.json()["generation"]["backup_id"], "b-2")
        res = self.client.get(self.url(), {"at": "2030-01-01T12:00"})
        self.assertEqual(res.json()["generation"]["id"], "gen-3")

    @create_mocks({api_freezer: ["backup_get", "backup_list"]})
    def test_errors(self):
        self.mock_series()
        res = self.client.get(self.url(), {"at": "2029-06-01T00:00"})
        self.assertEqual(res.status_code, 400)
        self.assertEqual(res.json()["field"], "point_in_time")
        self.assertIn("before the first generation", res.json()["error"])
        self.assertEqual(self.client.get(self.url(), {"at": "soon"}).status_code, 400)
        res = self.client.get(self.url("other-project"), {"at": "2030-01-01T11:00"})
        self.assertEqual(res.status_code, 404)
        self.assertNotIn("gen", res.content.decode())


def run(status, **doc):
    base = {"run_id": "run-1", "job_id": "job-9", "status": status}
    base.update(doc)
    return resources.JobRun(base)


class ProgressTests(helpers.TestCase):
    def restore_job(self):
        return helpers.job(
            job_id="job-9",
            description="Restore etc",
            job_actions=[
                {
                    "freezer_action": {
                        "action": "restore",
                        "backup_name": "etc",
                        "generation_id": "gen-2",
                        "restore_abs_path": "/srv/restored",
                    }
                }
            ],
        )

    def state(self):
        url = reverse("horizon:project:freezer_restore:progress_state", args=["job-9"])
        return self.client.get(url)

    @create_mocks({api_freezer: ["job_get", "job_run_list"]})
    def test_running_shows_percent_rate_and_eta(self):
        self.mock_job_get.return_value = self.restore_job()
        self.mock_job_run_list.return_value = (
            [
                run(
                    "running",
                    progress={"percent": 42.4, "rate": 1048576, "eta": 75, "bytes_done": 4096},
                )
            ],
            False,
        )
        body = self.state().json()
        self.assertEqual(body["state"], "running")
        self.assertEqual(body["progress"]["percent"], 42.4)
        self.assertEqual(body["progress"]["rate_text"], "1.0\xa0MB/s")
        self.assertEqual(body["progress"]["eta_text"], "1:15")
        self.mock_job_run_list.assert_called_with(
            IsHttpRequest(), job_id="job-9", limit=1, offset=0
        )
        page = self.client.get(reverse("horizon:project:freezer_restore:progress", args=["job-9"]))
        self.assertContains(page, "/srv/restored")
        self.assertContains(page, "gen-2")
        self.assertContains(page, 'style="width: 42.4%"')

    @create_mocks({api_freezer: ["job_get", "job_run_list"]})
    def test_success_shows_the_summary(self):
        self.mock_job_get.return_value = self.restore_job()
        summary = {
            "files": 12,
            "bytes": 3 * 1024 * 1024,
            "duration": 3725.2,
            "verified": True,
            "target": "/srv/restored",
        }
        self.mock_job_run_list.return_value = ([run("success", summary=summary)], False)
        body = self.state().json()
        self.assertEqual(body["state"], "success")
        self.assertEqual(body["summary"]["files"], 12)
        self.assertEqual(body["summary"]["bytes_text"], "3.0\xa0MB")
        self.assertEqual(body["summary"]["duration_text"], "1:02:05")
        self.assertEqual(body["state_text"], "Restored")
        self.assertTrue(body["summary"]["verified"])
        self.assertEqual(body["error"], "")
        page = self.client.get(reverse("horizon:project:freezer_restore:progress", args=["job-9"]))
        self.assertContains(page, "every file was checked against the backup")

    @create_mocks({api_freezer: ["job_get", "job_run_list"]})
    def test_failure_shows_the_error_escaped(self):
        self.mock_job_get.return_value = self.restore_job()
        failed = run(
            "fail",
            actions=[{"name": "restore", "result": "fail", "error": f"refused {PAYLOAD}"}],
            log=["restore generation gen-2", f"refused {PAYLOAD}"],
        )
        self.mock_job_run_list.return_value = ([failed], False)
        self.assertEqual(self.state().json()["error"], f"refused {PAYLOAD}")
        page = self.client.get(reverse("horizon:project:freezer_restore:progress", args=["job-9"]))
        self.assertNotContains(page, PAYLOAD)
        self.assertContains(page, "refused &lt;img")
        self.assertContains(page, "restore generation gen-2\nrefused &lt;img")  # the log tail

    @create_mocks({api_freezer: ["job_get", "job_run_list"]})
    def test_waiting_before_the_agent_starts(self):
        self.mock_job_get.return_value = self.restore_job()
        self.mock_job_run_list.return_value = ([], False)
        self.assertEqual(self.state().json()["state"], "waiting")
        self.assertEqual(self.state().json()["state_text"], "Waiting for the agent")

    @create_mocks({api_freezer: ["job_get", "job_run_list"]})
    def test_without_run_history_the_jobs_status_is_shown(self):
        # Remote mode: freezer-api has no run history (job_run_list raises Unavailable).
        self.mock_job_run_list.side_effect = api_exceptions.Unavailable("no run history")
        self.mock_job_get.return_value = self.restore_job()
        self.assertEqual(self.state().json()["state"], "waiting")
        done = self.restore_job().to_dict()
        done["job_schedule"].update(status="completed", result="fail", event="")
        self.mock_job_get.return_value = resources.Job(done)
        body = self.state().json()
        self.assertEqual(body["state"], "fail")
        self.assertIn("the agent's log on its host", body["error"])
        self.assertIn("run history", body["note"])

    @create_mocks({api_freezer: ["job_get", "job_run_list"]})
    def test_another_projects_job_is_not_found(self):
        self.mock_job_get.side_effect = api_exceptions.NotFound("no such job")
        self.assertEqual(self.state().status_code, 404)
        page = self.client.get(reverse("horizon:project:freezer_restore:progress", args=["x"]))
        self.assertRedirectsNoFollow(page, INDEX_URL)
        self.mock_job_run_list.assert_not_called()


class IndexTests(helpers.TestCase):
    @create_mocks({api_freezer: ["backup_list"]})
    def test_rows_of_our_backups_link_to_the_wizard(self):
        self.mock_backup_list.return_value = ([record("b-3", "gen-3", T3)], False)
        res = self.client.get(INDEX_URL)
        self.assertContains(res, WIZARD_URL + "?backup_id=b-3")


# ------------------------------------------------------------------------------- registry
class _Plugin(restore_sources.RestoreSource):
    name = "plugin"
    label = "Plugin format"

    def handles(self, backup):
        return (backup.to_dict().get("backup_metadata") or {}).get("plugin") is True

    def generations(self, request, backup):
        when = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
        return [restore_sources.Generation("p1", backup.id, when, "full", 0)]

    def restore_action(self, request, backup, generation, paths, target, overwrite):
        return {"action": "restore", "plugin_generation": generation.id}


def _plugin_backup():
    doc = copy.deepcopy(helpers.BACKUP_DOC)
    doc["backup_metadata"]["plugin"] = True
    return resources.Backup(doc)


class _TypedPathsPlugin(_Plugin):
    """A format whose generations cannot be browsed, but whose restores take paths."""

    name = "typed"
    can_pick_paths = True
    browsable = False

    def restore_action(self, request, backup, generation, paths, target, overwrite):
        return {"action": "restore", "restore_abs_path": target, "paths": list(paths)}


class _EntryPoint:
    def __init__(self, name, obj):
        self.name, self.value, self._obj = name, f"tests:{name}", obj

    def load(self):
        return self._obj


class TypedPathsTests(WizardTestCase):
    """A source that can restore a selection but cannot be browsed: paths are typed."""

    def setUp(self):
        super().setUp()
        patcher = mock.patch.object(
            restore_sources, "entry_points", return_value=[_EntryPoint("typed", _TypedPathsPlugin)]
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    @create_mocks({api_freezer: ["backup_get", "backup_list", "client_list", "job_create"]})
    def test_typed_paths_are_checked_and_sent(self):
        self.mock_series([_plugin_backup()])
        self.mock_client_list.return_value = ([helpers.client()], False)
        self.mock_job_create.return_value = "job-3"
        page = self.client.get(WIZARD_URL + "?backup_id=backup-1")
        self.assertContains(page, 'name="paths_text"')
        self.assertNotContains(page, 'id="restore-tree"')
        common = {"backup_id": "backup-1", "generation_id": "p1", "scope": "selected"}
        res = self.post(paths_text="etc\n../../root", **common)
        self.assertIn("../../root is not a path inside the backup", str(res.content))
        self.mock_job_create.assert_not_called()
        res = self.post(paths_text=" etc/nginx \n\nvar/www\n", **common)
        self.assertEqual(res.status_code, 302)
        action = self.mock_job_create.call_args.args[1]["job_actions"][0]["freezer_action"]
        self.assertEqual(action["paths"], ["etc/nginx", "var/www"])


class RegistryTests(helpers.TestCase):
    def test_builtin_source_and_unknown_names(self):
        self.assertIsInstance(
            restore_sources.get_source("freezer_ui"), restore_sources.FreezerUISource
        )
        with self.assertRaisesRegex(restore_sources.UnknownRestoreSource, "nope.*known:"):
            restore_sources.get_source("nope")

    def test_the_legacy_source_is_built_in_and_takes_upstream_records(self):
        self.assertEqual(list(restore_sources.source_classes()), ["freezer_ui", "freezer_legacy"])
        upstream = copy.deepcopy(helpers.BACKUP_DOC)
        del upstream["backup_metadata"]["generation_id"]  # the upstream agent writes none
        source = restore_sources.source_for(resources.Backup(upstream))
        self.assertEqual(source.name, "freezer_legacy")
        ours = restore_sources.source_for(record("b-1", "gen-1", T1))
        self.assertEqual(ours.name, "freezer_ui")

    def test_a_builtin_that_does_not_import_is_logged_once_and_left_out(self):
        missing = "freezer_ui.api.no_such_module:Source"
        restore_sources._failed_imports.discard(missing)
        with (
            mock.patch.object(
                restore_sources, "BUILTIN_SOURCES", (restore_sources.BUILTIN_SOURCES[0], missing)
            ),
            self.assertLogs(restore_sources.LOG, logging.WARNING) as logs,
        ):
            self.assertEqual(list(restore_sources.source_classes()), ["freezer_ui"])
            self.assertEqual(list(restore_sources.source_classes()), ["freezer_ui"])
        self.assertEqual(len([m for m in logs.output if missing in m]), 1)

    def test_entry_point_plugin_is_registered_and_chosen_for_its_backups(self):
        with mock.patch.object(
            restore_sources, "entry_points", return_value=[_EntryPoint("plugin", _Plugin)]
        ):
            self.assertIn("plugin", restore_sources.source_classes())
            theirs = _plugin_backup()
            self.assertIsInstance(restore_sources.source_for(theirs), _Plugin)
            ours = record("b-1", "gen-1", T1)
            self.assertIsInstance(restore_sources.source_for(ours), restore_sources.FreezerUISource)

    def test_duplicates_and_non_sources_fail_loudly(self):
        with mock.patch.object(
            restore_sources, "entry_points", return_value=[_EntryPoint("freezer_ui", _Plugin)]
        ):
            with self.assertRaises(restore_sources.DuplicateRestoreSource):
                restore_sources.source_classes()
        with mock.patch.object(
            restore_sources, "entry_points", return_value=[_EntryPoint("plugin", object)]
        ):
            with self.assertRaises(TypeError):
                restore_sources.source_classes()

    def test_resolve_needs_an_aware_datetime_and_refuses_before_the_first(self):
        source = _Plugin()
        backup = _plugin_backup()
        with self.assertRaises(ValueError):
            source.resolve(None, backup, datetime.datetime(2031, 1, 1))
        at = datetime.datetime(2029, 1, 1, tzinfo=datetime.UTC)
        with self.assertRaisesRegex(restore_sources.RestoreSourceError, "before the first"):
            source.resolve(None, backup, at)
        later = datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC)
        self.assertEqual(source.resolve(None, backup, later).id, "p1")
