"""browse.js in a real browser: the lazy tree against the real REST endpoint and repository.

Headless Chromium talks to Django's live server (Horizon + freezer-ui in this process); the
user is Horizon's test user (no Keystone here, unlike tests/browser/), the records are in the
embedded store and the repository is written by the real tar engine.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.urls import reverse
from openstack_dashboard.test import helpers as os_helpers

from freezer_ui.api import browse
from tests.api.test_browse import HTML_NAME, Fixture

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="freezer-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options), profile


@pytest.mark.browser
@pytest.mark.slow
class LazyTreeTests(StaticLiveServerTestCase, os_helpers.TestCase):
    """StaticLiveServerTestCase serves the plugin's static files (and compressor's output)."""

    @classmethod
    def setUpClass(cls):
        if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
            pytest.fail("the browser tests need chromium and chromedriver (make test)")
        super().setUpClass()
        cls.driver, cls.profile = chrome()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        shutil.rmtree(cls.profile, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        browse.clear_caches()
        self.fx = Fixture(self.tenant.id, self.user.id)
        self.addCleanup(self.fx.cleanup)
        _gen, self.backup_id = self.fx.backup()

    def wait_for(self, css, text=None):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(self.driver, 30)
        if text is None:
            return wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))
        return wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def tree_names(self, css=".freezer-tree"):
        from selenium.webdriver.common.by import By

        links = self.driver.find_elements(By.CSS_SELECTOR, css + " li.freezer-tree-node > a")
        return [a.text for a in links]

    def test_tree_opens_lazily_and_shows_names_as_text(self):
        from selenium.webdriver.common.by import By

        url = reverse("horizon:project:freezer_backups:detail", args=[self.backup_id])
        self.driver.get(self.live_server_url + url + "?path=etc")
        # The tree opens itself down to the directory shown (root, then etc).
        self.wait_for(".freezer-tree", "etc")
        self.assertEqual(self.tree_names()[:5], ["/", "data", "empty", "etc"][:5])
        # Only directories are tree nodes; "data" is not loaded until opened.
        data = self.driver.find_elements(By.CSS_SELECTOR, ".freezer-tree li.freezer-tree-node")[1]
        self.assertEqual(data.find_elements(By.CSS_SELECTOR, "ul"), [])
        data.find_element(By.CSS_SELECTOR, "button").click()
        self.wait_for(".freezer-tree", "sub")
        self.assertIn("sub", self.tree_names())
        # The listing shows the HTML-looking file name as text, not as an element.
        listing = self.driver.find_element(By.CSS_SELECTOR, ".freezer-listing").text
        self.assertIn(HTML_NAME, listing)
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, ".freezer-listing img"), [])
