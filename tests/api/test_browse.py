"""freezer_ui.api.browse against real repositories written by the real tar engine.

Records live in the embedded store (the test database), repositories in temporary
directories; nothing here is mocked except, in one test, the API mode setting.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from unittest import mock

from django.test import override_settings

from freezer_ui.api import browse
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import NotFound
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.engines.tar import TarEngine
from freezer_ui.repository import Repository, RetentionPolicy
from freezer_ui.storage import LocalStorage
from tests.dashboards import helpers

HTML_NAME = "<img src=x onerror=alert(1)>.txt"


def make_source(root: str) -> None:
    """A small tree with the kinds the browser shows: files, dirs, an empty dir, a symlink,
    a file spanning several chunks, and a name holding HTML."""
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "data", "sub"))
    os.makedirs(os.path.join(root, "empty"))
    with open(os.path.join(root, "etc", "app.conf"), "w") as f:
        f.write("version = 1\n")
    with open(os.path.join(root, "etc", HTML_NAME), "w") as f:
        f.write("<script>alert(1)</script>\n")
    with open(os.path.join(root, "data", "big.bin"), "wb") as f:
        f.write(os.urandom(3 << 20))
    with open(os.path.join(root, "data", "sub", "deep.txt"), "w") as f:
        f.write("deep\n")
    for i in range(30):
        with open(os.path.join(root, "data", f"f{i:02d}.log"), "w") as f:
            f.write(f"line {i}\n")
    os.symlink("etc/app.conf", os.path.join(root, "link"))


class Fixture:
    """A source tree, a repository with generations of it, and their backup records."""

    def __init__(self, project_id: str, user_id: str, passphrase: str | None = None):
        self.tmp = tempfile.mkdtemp(prefix="freezer-ui-browse-")
        self.source = os.path.join(self.tmp, "src")
        self.repo_path = os.path.join(self.tmp, "repo")
        self.project_id = project_id
        self.user_id = user_id
        make_source(self.source)
        Repository.init(LocalStorage(self.repo_path), passphrase)
        self.repo = Repository.open(LocalStorage(self.repo_path), passphrase)
        self.store = FreezerClient(
            EmbeddedTransport(), project_id=project_id, user_id=user_id, roles=["member"]
        )

    def backup(self, *, labels=None, name="etc", host="host-1", record=True, **meta):
        labels = {"project_id": self.project_id} if labels is None else labels
        engine = TarEngine(cache_dir=os.path.join(self.tmp, "cache"))
        result = engine.backup(
            self.repo, self.source, backup_name=name, hostname=host, labels=labels
        )
        if not record:
            return result.generation_id, None
        info = self.repo.open_generation(result.generation_id).info
        doc = {
            "backup_name": name,
            "hostname": host,
            "engine_name": "tar",
            "storage": "local",
            "container": self.repo_path,
            "repository": "local://" + self.repo_path,
            "time_stamp": int(info.time.timestamp()),
            "generation_id": result.generation_id,
            "size": result.bytes_total,
            "new_bytes": result.bytes_new,
            "stored_bytes": info.stats.get("stored_bytes"),
            "files": result.files,
            "freezer_ui_agent": True,
            "status": "available",
        }
        doc.update(meta)
        return result.generation_id, self.store.backups.create(doc)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def tree_of(root: str) -> dict[str, tuple]:
    """path -> (kind, content or target) of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                out[rel] = ("symlink", os.readlink(full))
            elif os.path.isdir(full):
                out[rel] = ("dir", None)
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read())
    return out


class BrowseTestBase(helpers.TestCase):
    passphrase = None

    def setUp(self):
        super().setUp()
        browse.clear_caches()
        # Horizon's request object is anonymous until a middleware runs: the API layer reads
        # the project from request.user, as in a real request.
        from openstack_auth import utils as auth_utils

        self.request.user = auth_utils.get_user(self.request)
        self.fx = Fixture(self.tenant.id, self.user.id, self.passphrase)
        self.addCleanup(self.fx.cleanup)


class BrowseTests(BrowseTestBase):
    def setUp(self):
        super().setUp()
        self.gen1, self.b1 = self.fx.backup()
        with open(os.path.join(self.fx.source, "etc", "app.conf"), "w") as f:
            f.write("version = 2, longer\n")
        self.gen2, self.b2 = self.fx.backup()

    def test_lists_the_root_then_a_directory_lazily(self):
        entries, more = browse.list_dir(self.request, self.b2)
        self.assertFalse(more)
        self.assertEqual(
            [(e["name"], e["type"]) for e in entries],
            [("data", "dir"), ("empty", "dir"), ("etc", "dir"), ("link", "symlink")],
        )
        self.assertEqual(entries[3]["target"], "etc/app.conf")
        entries, _more = browse.list_dir(self.request, self.b2, "etc")
        by_name = {e["name"]: e for e in entries}
        self.assertEqual(by_name["app.conf"]["size"], len("version = 2, longer\n"))
        self.assertEqual(by_name["app.conf"]["path"], "etc/app.conf")
        self.assertIn(HTML_NAME, by_name)
        self.assertEqual(browse.list_dir(self.request, self.b2, "empty"), ([], False))

    def test_directory_pages(self):
        first, more = browse.list_dir(self.request, self.b2, "data", limit=10)
        self.assertTrue(more)
        self.assertEqual(first[0]["name"], "sub")  # directories first
        rest, more = browse.list_dir(self.request, self.b2, "data", offset=30, limit=10)
        self.assertFalse(more)
        self.assertEqual(len(rest), 2)  # 1 dir + big.bin + 30 logs = 32 entries

    def test_a_file_is_not_a_directory_and_a_missing_path_is_an_error(self):
        with self.assertRaises(browse.PathNotFound):
            browse.list_dir(self.request, self.b2, "etc/app.conf")
        with self.assertRaises(browse.PathNotFound):
            browse.list_dir(self.request, self.b2, "nope")

    def test_listing_without_the_directory_map(self):
        # A generation too large for the per-process map is streamed per request instead.
        with mock.patch.object(browse, "TREE_CACHE_MAX_ITEMS", 0):
            entries, _more = browse.list_dir(self.request, self.b2, "data/sub")
            self.assertEqual([e["name"] for e in entries], ["deep.txt"])
            self.assertEqual(len(browse.search(self.request, self.b2, "*.log")), 30)

    def test_search_by_glob_and_substring(self):
        hits = browse.search(self.request, self.b2, "*.conf")
        self.assertEqual([h["path"] for h in hits], ["etc/app.conf"])
        hits = browse.search(self.request, self.b2, "DEEP")
        self.assertEqual([h["path"] for h in hits], ["data/sub/deep.txt"])
        self.assertEqual(len(browse.search(self.request, self.b2, ".log", limit=5)), 5)
        self.assertEqual(browse.search(self.request, self.b2, "  "), [])

    def test_versions_across_generations(self):
        versions = browse.file_versions(self.request, self.b2, "etc/app.conf")
        self.assertEqual([v["generation_id"] for v in versions], [self.gen2, self.gen1])
        self.assertEqual([v["backup_id"] for v in versions], [self.b2, self.b1])
        self.assertEqual([v["changed"] for v in versions], [True, True])
        self.assertEqual(versions[0]["size"], len("version = 2, longer\n"))
        unchanged = browse.file_versions(self.request, self.b1, "data/big.bin")
        self.assertEqual([v["changed"] for v in unchanged], [False, True])

    def test_versions_skip_generations_this_project_may_not_read(self):
        # A generation of the same repository labelled for another project, with a (forged)
        # record in our project's group, and a record naming a generation of another repository.
        foreign_gen, _none = self.fx.backup(labels={"project_id": "other-project"}, record=False)
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        elsewhere, _none = other.backup(record=False)
        for gen, stamp in ((foreign_gen, 2_000_000_000), (elsewhere, 2_000_000_001)):
            self.fx.store.backups.create(
                {"backup_name": "etc", "hostname": "host-1", "engine_name": "tar",
                 "storage": "local", "container": self.fx.repo_path, "generation_id": gen,
                 "time_stamp": stamp, "freezer_ui_agent": True}
            )  # fmt: skip
        versions = browse.file_versions(self.request, self.b2, "etc/app.conf")
        self.assertEqual([v["generation_id"] for v in versions], [self.gen2, self.gen1])

    def test_downloaded_file_equals_the_source(self):
        for path in ("data/big.bin", "etc/app.conf"):
            size, chunks = browse.open_file(self.request, self.b2, path)
            data = b"".join(chunks)
            with open(os.path.join(self.fx.source, path), "rb") as f:
                expected = f.read()
            self.assertEqual(size, len(expected))
            self.assertEqual(data, expected)
        # The older generation still has the older content.
        _size, chunks = browse.open_file(self.request, self.b1, "etc/app.conf")
        self.assertEqual(b"".join(chunks), b"version = 1\n")

    def test_a_backup_made_after_the_repository_was_cached_is_read(self):
        browse.list_dir(self.request, self.b2)  # the repository and its index are now cached
        with open(os.path.join(self.fx.source, "etc", "new.txt"), "wb") as f:
            f.write(b"new data " * 1000)
        _gen3, b3 = self.fx.backup()
        _size, chunks = browse.open_file(self.request, b3, "etc/new.txt")
        self.assertEqual(b"".join(chunks), b"new data " * 1000)

    def test_open_file_refuses_a_directory(self):
        with self.assertRaises(browse.PathNotFound):
            browse.open_file(self.request, self.b2, "etc")

    def test_whole_generation_as_tar_extracts_to_the_source_tree(self):
        data = b"".join(browse.tar_stream(self.request, self.b2))
        out = os.path.join(self.fx.tmp, "out")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(out, filter="tar")
        self.assertEqual(tree_of(out), tree_of(self.fx.source))

    def test_directory_as_tar(self):
        data = b"".join(browse.tar_stream(self.request, self.b2, "data/sub"))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
            deep = tar.extractfile("data/sub/deep.txt").read()
        self.assertEqual(sorted(names), ["data", "data/sub", "data/sub/deep.txt"])
        self.assertEqual(deep, b"deep\n")

    def test_tar_stream_is_bounded_and_can_be_abandoned(self):
        stream = browse.tar_stream(self.request, self.b2)
        first = next(stream)
        self.assertLessEqual(len(first), browse.TAR_BLOCK)
        stream.close()  # the browser cancelled: the writer thread stops

    def test_traversal_and_absolute_paths_are_refused(self):
        for bad in ("../etc", "/etc/passwd", "etc/../../x", "etc/./app.conf", "a//b", "x\x00"):
            with self.assertRaises(browse.BadPath, msg=bad):
                browse.list_dir(self.request, self.b2, bad)
            with self.assertRaises(browse.BadPath, msg=bad):
                browse.open_file(self.request, self.b2, bad)
            with self.assertRaises(browse.BadPath, msg=bad):
                browse.tar_stream(self.request, self.b2, bad)

    def test_another_projects_backup_id_is_not_found(self):
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        _gen, other_id = other.backup()
        for call in (
            lambda: browse.list_dir(self.request, other_id),
            lambda: browse.open_file(self.request, other_id, "etc/app.conf"),
            lambda: browse.tar_stream(self.request, other_id),
            lambda: browse.file_versions(self.request, other_id, "etc/app.conf"),
        ):
            with self.assertRaises(NotFound):
                call()

    def test_forged_record_pointing_at_another_projects_repository_is_refused(self):
        other = Fixture("other-project", "u2")
        self.addCleanup(other.cleanup)
        gen, _record = other.backup(record=False)
        # A record in *our* project naming their repository and generation.
        forged = self.fx.store.backups.create(
            {
                "backup_name": "etc",
                "hostname": "host-1",
                "engine_name": "tar",
                "storage": "local",
                "container": other.repo_path,
                "generation_id": gen,
                "freezer_ui_agent": True,
                "status": "available",
            }
        )
        with self.assertRaises(browse.Refused):
            browse.list_dir(self.request, forged)
        with self.assertRaises(browse.Refused):
            browse.open_file(self.request, forged, "etc/app.conf")
        with self.assertRaises(browse.Refused):
            browse.tar_stream(self.request, forged)

    def test_deleted_generation_is_a_clear_error(self):
        removed = self.fx.repo.forget(RetentionPolicy(keep_last=1))
        self.assertEqual(removed, [self.gen1])
        with self.assertRaises(browse.GenerationGone) as ctx:
            browse.list_dir(self.request, self.b1)
        self.assertIn("no longer in the repository", str(ctx.exception))
        # The newer one still browses.
        self.assertTrue(browse.list_dir(self.request, self.b2)[0])

    def test_repository_outside_the_allowed_roots_is_refused(self):
        with override_settings(FREEZER_UI_ALLOWED_ROOTS=["/srv/elsewhere"]):
            with self.assertRaises(browse.Refused):
                browse.list_dir(self.request, self.b2)

    def test_a_missing_repository_is_not_created(self):
        missing = os.path.join(self.fx.tmp, "not-there")
        record = self.fx.store.backups.create(
            {"backup_name": "x", "hostname": "h", "container": missing, "storage": "local",
             "generation_id": self.gen2, "freezer_ui_agent": True}
        )  # fmt: skip
        with self.assertRaises(browse.NotBrowsable):
            browse.list_dir(self.request, record)
        self.assertFalse(os.path.exists(missing))

    def test_upstream_creating_and_failed_records_are_not_browsable(self):
        upstream = self.fx.store.backups.create(
            {"backup_name": "old", "hostname": "h", "container": self.fx.repo_path}
        )
        legacy = self.fx.store.backups.create(
            {"backup_name": "old", "hostname": "h", "container": self.fx.repo_path,
             "freezer_ui_agent": True,
             "freezer_legacy": True, "generation_id": self.gen2}
        )  # fmt: skip
        creating = self.fx.store.backups.create(
            {"backup_name": "n", "hostname": "h", "freezer_ui_agent": True, "status": "creating"}
        )
        failed = self.fx.store.backups.create(
            {
                "backup_name": "n",
                "hostname": "h",
                "freezer_ui_agent": True,
                "status": "error",
                "error": "disk full",
            }
        )
        for record, words in (
            (upstream, "upstream Freezer"),
            (legacy, "upstream Freezer"),
            (creating, "still being created"),
            (failed, "disk full"),
        ):
            with self.assertRaises(browse.NotBrowsable) as ctx:
                browse.list_dir(self.request, record)
            self.assertIn(words, str(ctx.exception))

    def test_unlabelled_generation_only_in_embedded_mode(self):
        _gen, plain = self.fx.backup(labels={})
        self.assertTrue(browse.list_dir(self.request, plain)[0])
        record = api_freezer.backup_get(self.request, plain)
        browse.clear_caches()
        # Remote mode, with the record a freezer-api would return.
        with (
            override_settings(FREEZER_UI_API_MODE="remote"),
            mock.patch.object(api_freezer, "backup_get", return_value=record),
        ):
            with self.assertRaises(browse.Refused):
                browse.list_dir(self.request, plain)


class EncryptedBrowseTests(BrowseTestBase):
    passphrase = "correct horse"

    def test_passphrase_from_the_key_file_the_record_names(self):
        from django.conf import settings

        key_dir = os.path.join(settings.FREEZER_UI_STATE_DIR, "agent", "keys")
        os.makedirs(key_dir, exist_ok=True)
        with open(os.path.join(key_dir, "browse-test-key"), "w") as f:
            f.write(self.passphrase + "\n")
        self.addCleanup(os.unlink, os.path.join(key_dir, "browse-test-key"))
        _gen, record = self.fx.backup(passphrase_ref="browse-test-key")
        _size, chunks = browse.open_file(self.request, record, "etc/app.conf")
        self.assertEqual(b"".join(chunks), b"version = 1\n")

    def test_encrypt_pass_file_in_a_record_is_not_read(self):
        path = os.path.join(self.fx.tmp, "pass")
        with open(path, "w") as f:
            f.write(self.passphrase)
        _gen, record = self.fx.backup(encrypt_pass_file=path)
        with self.assertRaises(browse.NotBrowsable) as ctx:
            browse.list_dir(self.request, record)
        self.assertIn("passphrase", str(ctx.exception))
