"""freezer_ui.api.backup_groups: the SQL grouping (embedded) and the paged grouping (remote)
give the same pages for every sort, and stay inside the request's project."""

from __future__ import annotations

import random
from unittest import mock

from django.test import override_settings
from openstack_auth import utils as auth_utils

from freezer_ui.api import backup_groups
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import NotFound
from freezer_ui.api.resources import Backup
from freezer_ui.api.transports.embedded import EmbeddedTransport
from tests.dashboards import helpers


def summary(groups):
    return [
        (
            g.backup_name,
            g.hostname,
            g.engine_name,
            g.storage,
            g.origin,
            g.generations,
            g.last_time,
            g.last_status,
            g.last_backup_id,
            g.size,
            g.stored_bytes,
        )
        for g in groups
    ]


class GroupTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self.request.user = auth_utils.get_user(self.request)
        self.store = FreezerClient(
            EmbeddedTransport(), project_id=self.tenant.id, user_id=self.user.id, roles=["member"]
        )
        rng = random.Random(7)
        self.ids = {}
        for i in range(60):
            name = f"b{i % 7}"
            host = f"h{i % 3}"
            doc = {
                "backup_name": name,
                "hostname": host,
                "engine_name": "tar" if i % 5 else "rsync",
                "storage": "local",
                "container": "/srv/r",
                "time_stamp": 1_700_000_000 + rng.randrange(10_000),
                "size": rng.randrange(1000),
                "stored_bytes": rng.randrange(100),
                "freezer_ui_agent": i % 11 != 0,
                "status": "error" if i % 13 == 0 else "available",
            }
            if i % 17 == 0:
                doc.pop("size")
                doc["backup_size_uncompressed"] = 5  # an upstream record's name for it
            self.ids[i] = self.store.backups.create(doc)
        other = FreezerClient(
            EmbeddedTransport(), project_id="other-project", user_id="u2", roles=["member"]
        )
        other.backups.create(
            {"backup_name": "b1", "hostname": "h1", "container": "/c", "freezer_ui_agent": True}
        )

    def remote(self, **kwargs):
        """The remote code path, paging through the same records (7 a page, as a freezer-api
        would return them) via backup_list."""

        def paged(request, *, limit, offset, all_projects=False, search=None):
            page = self.store.backups.list(limit=min(limit, 7), offset=offset)
            return [Backup(doc) for doc in page], page.has_more

        with (
            override_settings(FREEZER_UI_API_MODE="remote"),
            mock.patch.object(api_freezer, "backup_list", side_effect=paged),
        ):
            return backup_groups.backup_group_list(self.request, **kwargs)

    def test_embedded_and_remote_agree_for_every_sort_and_page(self):
        for sort in backup_groups.GROUP_SORTS:
            for descending in (True, False):
                for offset in (0, 10):
                    kwargs = dict(limit=10, offset=offset, sort=sort, descending=descending)
                    sql, sql_more = backup_groups.backup_group_list(self.request, **kwargs)
                    paged, paged_more = self.remote(**kwargs)
                    self.assertEqual(summary(sql), summary(paged), kwargs)
                    self.assertEqual(sql_more, paged_more, kwargs)

    def test_totals_and_newest_record(self):
        groups, _more = backup_groups.backup_group_list(self.request, limit=100)
        total = sum(g.generations for g in groups)
        self.assertEqual(total, 60)  # the other project's record is not counted
        for g in groups:
            record, group = backup_groups.backup_group_get(self.request, g.last_backup_id)
            self.assertEqual(record.time_stamp, g.last_time)
            self.assertEqual(summary([group]), summary([g]))

    def test_search_by_name_or_host(self):
        groups, _ = backup_groups.backup_group_list(self.request, limit=100, search="B3")
        self.assertEqual({g.backup_name for g in groups}, {"b3"})
        groups, _ = backup_groups.backup_group_list(self.request, limit=100, search="h2")
        self.assertEqual({g.hostname for g in groups}, {"h2"})

    def test_generations_of_one_group_newest_first(self):
        groups, _ = backup_groups.backup_group_list(self.request, limit=1)
        (group,) = groups
        page, more = backup_groups.backup_group_backups(
            self.request, group.last_backup_id, limit=100
        )
        self.assertFalse(more)
        self.assertEqual(len(page), group.generations)
        stamps = [b.time_stamp for b in page]
        self.assertEqual(stamps, sorted(stamps, reverse=True))
        self.assertEqual({backup_groups.group_key(b) for b in page}, {group.key})
        first, more = backup_groups.backup_group_backups(
            self.request, group.last_backup_id, limit=1, offset=0, descending=False
        )
        self.assertEqual(first[0].time_stamp, min(stamps))

    def test_another_projects_record_names_no_group(self):
        other = FreezerClient(
            EmbeddedTransport(), project_id="other-project", user_id="u2", roles=["member"]
        )
        theirs = other.backups.list(limit=1)[0]["backup_id"]
        with self.assertRaises(NotFound):
            backup_groups.backup_group_get(self.request, theirs)
        with self.assertRaises(NotFound):
            backup_groups.backup_group_backups(self.request, theirs)

    def test_odd_values_group_like_the_python_rule(self):
        # JSON true spelled as 1 or "true", a missing engine: SQL and the Python rule
        # (origin_of, group_key) must agree, or a group's page would be empty.
        for meta in (
            {"freezer_ui_agent": True},
            {"freezer_ui_agent": 1},
            {"freezer_ui_agent": "true"},
            {"freezer_ui_agent": True, "freezer_legacy": True},
        ):
            self.store.backups.create(
                dict({"backup_name": "odd", "hostname": "hx", "container": "/c"}, **meta)
            )
        groups, _ = backup_groups.backup_group_list(self.request, limit=100, search="odd")
        self.assertEqual(sorted((g.backup_name, g.engine_name, g.origin, g.generations)
                                for g in groups),
                         [("odd", "", "ours", 1), ("odd", "", "upstream", 3)])  # fmt: skip
        for g in groups:
            page, _ = backup_groups.backup_group_backups(self.request, g.last_backup_id)
            self.assertEqual(len(page), g.generations)

    def test_unknown_sort_falls_back_to_the_default(self):
        a, _ = backup_groups.backup_group_list(self.request, sort="id; DROP TABLE x")
        b, _ = backup_groups.backup_group_list(self.request)
        self.assertEqual(summary(a), summary(b))
