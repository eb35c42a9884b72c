"""The Backups panel end to end: embedded store, real repositories, real downloads.

Records are stored through the embedded transport; repositories are written by the real tar
engine in temporary directories (tests/api/test_browse.py's Fixture).  No API function is mocked.
"""

import io
import json
import os
import re
import tarfile
from unittest import mock

from django.urls import reverse

from freezer_ui.api import backup_groups, browse
from freezer_ui.api.exceptions import Unavailable
from freezer_ui.repository import RetentionPolicy
from tests.api.test_browse import HTML_NAME, Fixture, tree_of
from tests.dashboards import helpers

INDEX_URL = reverse("horizon:project:freezer_backups:index")
PAYLOAD = "<script>alert('x')</script>"


def detail_url(backup_id, **query):
    url = reverse("horizon:project:freezer_backups:detail", args=[backup_id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def streamed(response):
    return b"".join(response.streaming_content)


class PanelTestBase(helpers.TestCase):
    def setUp(self):
        super().setUp()
        browse.clear_caches()
        self.fx = Fixture(self.tenant.id, self.user.id)
        self.addCleanup(self.fx.cleanup)

    def record(self, **meta):
        doc = {
            "backup_name": "etc",
            "hostname": "host-1",
            "engine_name": "tar",
            "storage": "local",
            "container": "/srv/backups",
            "time_stamp": 1_700_000_000,
            "size": 1000,
            "stored_bytes": 100,
            "freezer_ui_agent": True,
            "status": "available",
        }
        doc.update(meta)
        return self.fx.store.backups.create(doc)


class GroupsPageTests(PanelTestBase):
    def test_groups_with_counts_sizes_and_origin(self):
        for i in range(3):
            self.record(time_stamp=1_700_000_000 + i, size=1000, stored_bytes=100)
        self.record(backup_name="home", hostname="host-2", time_stamp=1_600_000_000, size=7)
        self.record(backup_name="legacy", freezer_ui_agent=False, time_stamp=1_500_000_000)
        self.record(backup_name=PAYLOAD)
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        other.store.backups.create(
            {
                "backup_name": "not-yours",
                "hostname": "h",
                "container": "/c",
                "freezer_ui_agent": True,
            }
        )

        res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTemplateUsed(res, "freezer_ui/project/freezer_backups/index.html")
        groups = {g.backup_name: g for g in res.context["table"].data}
        self.assertEqual(set(groups), {"etc", "home", "legacy", PAYLOAD})
        self.assertEqual(groups["etc"].generations, 3)
        self.assertEqual(groups["etc"].size, 3000)
        self.assertEqual(groups["etc"].stored_bytes, 300)
        self.assertEqual(groups["etc"].last_time, 1_700_000_002)
        self.assertEqual(groups["legacy"].origin, "upstream")
        self.assertContains(res, "upstream Freezer")
        self.assertContains(res, "2.9\xa0KB")  # 3000 bytes
        self.assertNotContains(res, "not-yours")
        self.assertNotContains(res, PAYLOAD)
        self.assertContains(res, "&lt;script&gt;")

    def test_sorted_on_the_server_and_paged_with_the_sort(self):
        for i in range(25):
            self.record(backup_name=f"b{i:02d}", time_stamp=1_700_000_000 + i)
        res = self.client.get(INDEX_URL + "?sort=backup_name&dir=asc")
        names = [g.backup_name for g in res.context["table"].data]
        self.assertEqual(names, [f"b{i:02d}" for i in range(20)])
        # The "next" link keeps the sort; the header of the sorted column flips direction.
        self.assertContains(res, "offset=20&amp;sort=backup_name&amp;dir=asc")
        self.assertContains(res, "?sort=backup_name&amp;dir=desc")
        res = self.client.get(INDEX_URL + "?offset=20&sort=backup_name&dir=asc")
        names = [g.backup_name for g in res.context["table"].data]
        self.assertEqual(names, [f"b{i:02d}" for i in range(20, 25)])
        # Default: newest first.
        res = self.client.get(INDEX_URL)
        self.assertEqual(res.context["table"].data[0].backup_name, "b24")

    def test_search_by_name_or_host(self):
        self.record(backup_name="etc", hostname="web-1")
        self.record(backup_name="home", hostname="db-1")
        res = self.client.post(
            INDEX_URL,
            {
                "backup_groups__filter__q": "web",
                "backup_groups__filter__q_field": "search",
            },  # fmt: skip
        )
        res = self.client.get(INDEX_URL)
        self.assertEqual([g.backup_name for g in res.context["table"].data], ["etc"])

    def test_empty_state(self):
        self.assertContains(self.client.get(INDEX_URL), "No backups yet")

    def test_unavailable_service_is_a_message_not_an_empty_list(self):
        with mock.patch.object(
            backup_groups, "backup_group_list", side_effect=Unavailable("connection refused")
        ):
            res = self.client.get(INDEX_URL)
        self.assertEqual(res.status_code, 200)
        self.assertTrue(
            any("Unable to retrieve backups." in str(m) for m in res.context["messages"])
        )
        self.assertNotContains(res, "No backups yet")


class GroupPageTests(PanelTestBase):
    def test_timeline_of_one_backup(self):
        gen1, b1 = self.fx.backup()
        gen2, b2 = self.fx.backup()
        self.record(backup_name="other-backup")
        creating = self.fx.store.backups.create(
            {"backup_name": "etc", "hostname": "host-1", "engine_name": "tar",
             "storage": "local", "freezer_ui_agent": True, "status": "creating",
             "time_stamp": 2_000_000_000,
             "progress": {"bytes_done": 50, "bytes_total": 200}}
        )  # fmt: skip
        url = reverse("horizon:project:freezer_backups:group", args=[b1])
        res = self.client.get(url)
        self.assertEqual(res.status_code, 200)
        rows = res.context["table"].data
        self.assertEqual([r.id for r in rows], [creating, b2, b1])
        self.assertContains(res, "full (deduplicated)")
        self.assertContains(res, "25% of 200")
        self.assertContains(res, detail_url(b2))
        self.assertContains(res, reverse("horizon:project:freezer_restore:wizard") + "?backup_id=")
        self.assertNotContains(res, "other-backup")

    def test_upstream_backup_is_marked_and_not_browsable(self):
        b = self.record(backup_name="old", freezer_ui_agent=False, level=2, engine_name="tar")
        res = self.client.get(reverse("horizon:project:freezer_backups:group", args=[b]))
        self.assertContains(res, "written by the upstream Freezer agent")
        self.assertContains(res, "incremental (level 2)")
        res = self.client.get(detail_url(b))
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "cannot be browsed here")

    def test_html_in_the_group_title_is_escaped(self):
        b = self.record(backup_name=PAYLOAD, hostname="<i>h</i>")
        res = self.client.get(reverse("horizon:project:freezer_backups:group", args=[b]))
        self.assertEqual(res.status_code, 200)
        self.assertNotContains(res, PAYLOAD)
        self.assertNotContains(res, "<i>h</i>")
        self.assertNotContains(res, "&amp;lt;")  # escaped once, not twice
        self.assertContains(res, "&lt;i&gt;h&lt;/i&gt;")

    def test_another_projects_group_is_not_shown(self):
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        b = other.store.backups.create(
            {
                "backup_name": "secret-name",
                "hostname": "h",
                "container": "/c",
                "freezer_ui_agent": True,
            }
        )
        res = self.client.get(reverse("horizon:project:freezer_backups:group", args=[b]))
        self.assertRedirectsNoFollow(res, INDEX_URL)


class BrowserTests(PanelTestBase):
    def setUp(self):
        super().setUp()
        self.gen1, self.b1 = self.fx.backup()
        with open(os.path.join(self.fx.source, "etc", "app.conf"), "w") as f:
            f.write("version = 2\n")
        self.gen2, self.b2 = self.fx.backup()

    def test_root_listing_breadcrumb_and_escaped_names(self):
        res = self.client.get(detail_url(self.b2))
        self.assertEqual(res.status_code, 200)
        self.assertEqual(
            [e["name"] for e in res.context["entries"]], ["data", "empty", "etc", "link"]
        )
        res = self.client.get(detail_url(self.b2, path="etc"))
        self.assertContains(res, "app.conf")
        self.assertNotContains(res, HTML_NAME)
        self.assertContains(res, "&lt;img src=x onerror=alert(1)&gt;.txt")
        self.assertContains(res, 'class="breadcrumb freezer-breadcrumb"')
        self.assertContains(res, f'data-api-url="/api/freezer_ui/backups/{self.b2}/"')

    def test_search(self):
        res = self.client.get(detail_url(self.b2, q="deep"))
        self.assertEqual([e["path"] for e in res.context["entries"]], ["data/sub/deep.txt"])

    def test_traversal_in_the_path_is_refused_on_the_page(self):
        for bad in ("..", "/etc", "etc/../.."):
            res = self.client.get(detail_url(self.b2), {"path": bad})
            self.assertEqual(res.status_code, 200)
            self.assertNotIn("entries", res.context)
            self.assertContains(res, "freezer-browse-error")

    def test_download_one_file(self):
        url = reverse("horizon:project:freezer_backups:file", args=[self.b2])
        res = self.client.get(url, {"path": "data/big.bin"})
        self.assertEqual(res.status_code, 200)
        with open(os.path.join(self.fx.source, "data", "big.bin"), "rb") as f:
            expected = f.read()
        self.assertEqual(res["Content-Length"], str(len(expected)))
        self.assertEqual(
            res["Content-Disposition"], "attachment; filename=\"big.bin\"; filename*=UTF-8''big.bin"
        )
        self.assertEqual(streamed(res), expected)

    def test_download_a_file_with_markup_in_its_name(self):
        url = reverse("horizon:project:freezer_backups:file", args=[self.b2])
        res = self.client.get(url, {"path": f"etc/{HTML_NAME}"})
        self.assertEqual(streamed(res), b"<script>alert(1)</script>\n")
        disposition = res["Content-Disposition"]
        fallback = re.search(r'filename="([^"]*)"', disposition).group(1)
        self.assertTrue(re.fullmatch(r"[A-Za-z0-9._+-]+", fallback), fallback)
        self.assertNotIn("<", disposition)

    def test_whole_generation_and_a_directory_as_tar(self):
        url = reverse("horizon:project:freezer_backups:tar", args=[self.b2])
        res = self.client.get(url)
        self.assertEqual(res.status_code, 200)
        self.assertEqual(res["Content-Type"], "application/x-tar")
        self.assertIn(f'filename="etc-{self.gen2[:12]}.tar"', res["Content-Disposition"])
        out = os.path.join(self.fx.tmp, "out")
        with tarfile.open(fileobj=io.BytesIO(streamed(res))) as tar:
            tar.extractall(out, filter="tar")
        self.assertEqual(tree_of(out), tree_of(self.fx.source))

        res = self.client.get(url, {"path": "etc"})
        with tarfile.open(fileobj=io.BytesIO(streamed(res))) as tar:
            self.assertEqual(sorted(tar.getnames()), ["etc", f"etc/{HTML_NAME}", "etc/app.conf"])

    def test_versions_page(self):
        url = reverse("horizon:project:freezer_backups:versions", args=[self.b2])
        res = self.client.get(url, {"path": "etc/app.conf"})
        self.assertEqual(res.status_code, 200)
        rows = res.context["table"].data
        self.assertEqual([r.generation_id for r in rows], [self.gen2, self.gen1])
        self.assertEqual([r.changed for r in rows], [True, True])
        file_url = reverse("horizon:project:freezer_backups:file", args=[self.b1])
        self.assertContains(res, file_url + "?path=etc%2Fapp.conf")

    def test_another_projects_backup_gives_404_and_no_bytes(self):
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        _gen, theirs = other.backup()
        for name, query in (("file", {"path": "etc/app.conf"}), ("tar", {}), ("versions",
                            {"path": "etc/app.conf"})):  # fmt: skip
            res = self.client.get(
                reverse(f"horizon:project:freezer_backups:{name}", args=[theirs]), query
            )
            self.assertEqual(res.status_code, 404, name)
            self.assertFalse(res.streaming, name)
            self.assertNotIn(b"version = 1", res.content)
        res = self.client.get(detail_url(theirs))
        self.assertRedirectsNoFollow(res, INDEX_URL)

    def test_forged_record_is_refused_without_bytes(self):
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        gen, _none = other.backup(record=False)
        forged = self.record(container=other.repo_path, generation_id=gen)
        res = self.client.get(
            reverse("horizon:project:freezer_backups:file", args=[forged]),
            {"path": "etc/app.conf"},
        )
        self.assertRedirectsNoFollow(res, detail_url(forged))
        self.assertFalse(res.streaming)
        res = self.client.get(detail_url(forged))
        self.assertContains(res, "belongs to another project")

    def test_traversal_in_downloads_is_refused(self):
        for name in ("file", "tar"):
            for bad in ("../x", "/etc/passwd", "etc/../../x"):
                res = self.client.get(
                    reverse(f"horizon:project:freezer_backups:{name}", args=[self.b2]),
                    {"path": bad},
                )
                self.assertRedirectsNoFollow(res, detail_url(self.b2))
                self.assertFalse(res.streaming)

    def test_deleted_generation_says_so(self):
        self.fx.repo.forget(RetentionPolicy(keep_last=1))
        res = self.client.get(detail_url(self.b1))
        self.assertContains(res, "no longer in the repository")
        res = self.client.get(reverse("horizon:project:freezer_backups:tar", args=[self.b1]))
        self.assertRedirectsNoFollow(res, detail_url(self.b1))


class RestTests(PanelTestBase):
    def setUp(self):
        super().setUp()
        _gen, self.b = self.fx.backup()

    def get(self, backup_id, what, ajax=True, **query):
        # Horizon's JSONResponse has a read-only ``json`` property that Django's test client
        # cannot set, so the request is built by hand and routed through the real URLconf.
        from django.urls import resolve
        from openstack_auth import utils as auth_utils

        url = f"/api/freezer_ui/backups/{backup_id}/{what}/"
        headers = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"} if ajax else {}
        request = self.factory.get(url, query, **headers)
        request.user = auth_utils.get_user(request)
        match = resolve(url)
        return match.func(request, *match.args, **match.kwargs)

    def test_lazy_directory_search_and_versions(self):
        res = self.get(self.b, "dir", path="")
        self.assertEqual(res.status_code, 200)
        body = json.loads(res.content)
        self.assertEqual([e["name"] for e in body["items"]], ["data", "empty", "etc", "link"])
        self.assertFalse(body["has_more"])
        body = json.loads(self.get(self.b, "dir", path="data", limit=5).content)
        self.assertEqual(len(body["items"]), 5)
        self.assertTrue(body["has_more"])
        body = json.loads(self.get(self.b, "search", q="*.conf").content)
        self.assertEqual([e["path"] for e in body["items"]], ["etc/app.conf"])
        body = json.loads(self.get(self.b, "versions", path="etc/app.conf").content)
        self.assertEqual(len(body["items"]), 1)

    def test_markup_in_names_is_escaped_in_json(self):
        res = self.get(self.b, "dir", path="etc")
        self.assertNotIn(b"<img", res.content)
        self.assertIn(b"\\u003cimg", res.content)
        names = [e["name"] for e in json.loads(res.content)["items"]]
        self.assertIn(HTML_NAME, names)

    def test_errors(self):
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        _gen, theirs = other.backup()
        self.assertEqual(self.get(theirs, "dir").status_code, 404)
        self.assertEqual(self.get(self.b, "dir", path="../x").status_code, 400)
        self.assertEqual(self.get(self.b, "dir", path="/etc").status_code, 400)
        self.assertEqual(self.get(self.b, "dir", path="nope").status_code, 404)
        # Not an AJAX request: Horizon's REST layer refuses it.
        self.assertEqual(self.get(self.b, "dir", ajax=False).status_code, 400)
