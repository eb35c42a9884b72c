"""End-to-end fixtures: headless Chromium → pytest-django's live server (Horizon + freezer-ui) →
a real Keystone 30 started from ``demo.keystone`` for the whole session.

Nothing is faked on the way: logins go through ``openstack_auth``'s Keystone backend to the real
Keystone, and tokens, roles and projects are Keystone's.  The unit-test settings
(``tests.settings``, built on Horizon's test settings) point at a fake Keystone and offer two
fake regions and a domain field on the login form; the ``horizon`` fixture overrides exactly
those for the duration of each browser test.

Missing Chromium or chromedriver is a failure, not a skip: `make test` installs them.
"""

from __future__ import annotations

import os
import runpy
import shutil
import socket
import sys
import tempfile
import types
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from openstack_auth import policy as openstack_auth_policy
from openstack_auth import utils as openstack_auth_utils
from openstack_dashboard import defaults as dashboard_defaults
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from demo import keystone as demo_keystone

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO_ROOT = Path(__file__).resolve().parents[2]
# The pictures in docs/ are refreshed with `make screenshots` (UPDATE_SCREENSHOTS=1); a plain
# test run writes them to a scratch folder so it never dirties the checkout.
SCREENSHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "freezer-ui-screenshots"
)
# Page loads include Keystone round trips and, on the first page, Horizon's SCSS compilation.
WAIT = float(os.environ.get("BROWSER_TEST_WAIT", 60))


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            # A hung page or Keystone call fails this test, not the whole CI run.
            item.add_marker(pytest.mark.timeout(300))


FAILURES = Path(tempfile.gettempdir()) / "freezer-ui-browser-failures"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A failed browser test keeps what the browser showed: screenshot + HTML, named in the report.
    outcome = yield
    report = outcome.get_result()
    browser = item.funcargs.get("horizon") if hasattr(item, "funcargs") else None
    if report.failed and report.when == "call" and isinstance(browser, Browser):
        FAILURES.mkdir(parents=True, exist_ok=True)
        stem = FAILURES / item.name.replace("/", "_")
        try:
            browser.driver.save_screenshot(f"{stem}.png")
            Path(f"{stem}.html").write_text(browser.driver.page_source)
            report.sections.append(("browser", f"{browser.driver.current_url}\n{stem}.png/.html"))
        except Exception as exc:  # the browser itself may be what broke
            report.sections.append(("browser", f"could not capture the page: {exc}"))


@pytest.fixture(scope="session")
def keystone_server(tmp_path_factory):
    """A real Keystone on a free loopback port, with the demo's admin/demo/other accounts."""
    server = demo_keystone.KeystoneServer(
        tmp_path_factory.mktemp("keystone"), demo_keystone.free_port()
    )
    server.setup()
    server.start()
    try:
        server.provision()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chrome(tmp_path_factory):
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(
                f"{path} is missing: the browser tests need Debian's chromium and "
                "chromium-driver (`make test` installs them with apt)",
                pytrace=False,
            )
    profile = tempfile.mkdtemp(prefix="freezer-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT * 2)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# Captured at collection, before any unit test has had a chance to swap it for a fake user.
_REAL_GET_USER = openstack_auth_utils.get_user


def _isolate_from_unit_tests() -> None:
    """Undo what Horizon's unit-test helpers may leave behind in this shared process.

    The live server runs in this pytest process, after the panel unit tests.  Those render full
    pages under the unit-test settings, and django-compressor caches each rendered
    ``{% compress %}`` block in the default cache: served here, that is an unstyled page with raw
    SCSS.  Horizon's TestCase also swaps ``openstack_auth.utils.get_user`` for a fake user and
    starts mock patchers; a test that fails in setUp never restores them.  Browser tests must
    see the real code path, so start each one from a clean slate.
    """
    mock.patch.stopall()
    openstack_auth_utils.get_user = _REAL_GET_USER
    # Every configured alias (caches.all() lists only those this thread has opened already).
    for alias in django_settings.CACHES:
        caches[alias].clear()


# The settings that make up Horizon's front end (templates, styles, scripts, themes, URLconf).
FRONTEND_SETTINGS = (
    "ROOT_URLCONF",
    # The unit-test TEMPLATES put openstack_dashboard/test/templates first, whose stand-ins for
    # error pages and headers show fake test data; production templates only.
    "TEMPLATES",
    "COMPRESS_PRECOMPILERS",
    "COMPRESS_FILTERS",
    "COMPRESS_OUTPUT_DIR",
    "COMPRESS_CSS_HASHING_METHOD",
    "STATICFILES_DIRS",
    "AVAILABLE_THEMES",
    "SELECTABLE_THEMES",
    "DEFAULT_THEME",
    "THEME_COLLECTION_DIR",
)


@pytest.fixture(scope="session")
def production_frontend() -> dict:
    """FRONTEND_SETTINGS as openstack_dashboard/settings.py computes them for production.

    The module runs in a scratch namespace (runpy), so this process's settings stay those of
    the unit tests.  It reads ``local.local_settings`` while it runs; a stand-in with a
    SECRET_KEY keeps it from writing a key file into site-packages.
    """
    stand_in = types.ModuleType("local.local_settings")
    stand_in.SECRET_KEY = "only-used-to-compute-front-end-settings"
    saved = sys.modules.get("local.local_settings")
    sys.modules["local.local_settings"] = stand_in
    try:
        values = runpy.run_module("openstack_dashboard.settings", run_name="_production_settings")
    finally:
        if saved is None:
            sys.modules.pop("local.local_settings", None)
        else:
            sys.modules["local.local_settings"] = saved
    return {name: values[name] for name in FRONTEND_SETTINGS}


class Browser:
    """Thin helpers over the WebDriver; every wait is an explicit WebDriverWait condition."""

    def __init__(self, driver, base_url: str):
        self.driver = driver
        self.base_url = base_url.rstrip("/")

    def get(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait(self, condition, timeout: float = WAIT, message: str = ""):
        # A stale element means the page was replaced under the condition (Horizon reloads the
        # table after a modal form): evaluate again on the new page.
        return WebDriverWait(
            self.driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition, message)

    def find(self, css: str, timeout: float = WAIT):
        return self.wait(
            EC.presence_of_element_located((By.CSS_SELECTOR, css)), timeout, f"no element {css!r}"
        )

    def find_all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css: str, timeout: float = WAIT):
        return self.wait(
            EC.visibility_of_element_located((By.CSS_SELECTOR, css)),
            timeout,
            f"no visible element {css!r}",
        )

    @property
    def path(self) -> str:
        return self.driver.current_url[len(self.base_url) :]

    def choose(self, name: str, value: str) -> None:
        """Pick ``value`` in the <select> called ``name``, the way a user does.

        Horizon draws most selects as a "themable select": the real <select> is hidden and a
        Bootstrap dropdown sets it; plain selects are used directly.
        """
        select = self.find(f"select[name='{name}']")
        if select.is_displayed():
            Select(select).select_by_value(value)
            return
        box = select.find_element(By.XPATH, "./ancestor::*[contains(@class,'themable-select')][1]")
        box.find_element(By.CSS_SELECTOR, ".dropdown-toggle").click()
        option = box.find_element(By.CSS_SELECTOR, f"a[data-select-value='{value}']")
        self.wait(lambda d: option.is_displayed(), message=f"option {value!r} never shown")
        option.click()
        self.wait(
            lambda d: select.get_attribute("value") == value,
            message=f"select {name} did not take {value!r}",
        )

    def type_into(self, name: str, text: str) -> None:
        field = self.visible(f"[name='{name}']")
        field.clear()
        field.send_keys(text)

    def row_texts(self, table_css: str = "table") -> list[str]:
        return [r.text for r in self.find_all(f"{table_css} tbody tr")]

    def forget_session(self) -> None:
        """Leave the previous page and drop every cookie, so no old session can come back.

        about:blank first stops the previous page's late requests (Horizon's table polling,
        the header): a response landing after the cookies were cleared would set the previous
        user's session cookie again.  CDP clears cookies for all origins, not only the page's.
        """
        self.driver.get("about:blank")
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})

    def login(self, account: demo_keystone.Account) -> None:
        self.forget_session()
        self.get("/auth/login/")
        self.visible("#id_username").send_keys(account.username)
        self.driver.find_element(By.ID, "id_password").send_keys(account.password)
        self.driver.find_element(By.ID, "loginBtn").click()
        try:
            # Success: Horizon leaves the login page and names the user in its menu.
            self.wait(
                lambda d: (
                    "/auth/login/" not in d.current_url
                    and d.find_elements(By.CSS_SELECTOR, ".user-menu .user-name")
                ),
                message="still on the login page",
            )
        except TimeoutException:
            errors = [e.text for e in self.find_all(".alert-danger, .error, .help-block")]
            raise AssertionError(f"login as {account.username} failed: {errors}") from None
        shown = self.driver.find_element(By.CSS_SELECTOR, ".user-menu .user-name")
        shown = shown.get_attribute("textContent").strip()
        assert shown == account.username, f"logged in as {account.username}, Horizon shows {shown}"

    def logout(self) -> None:
        # Sign Out is a POST form in the user menu (Django 5 refuses GET logouts).  Open a page
        # every role may see first: the landing page can be Horizon's "not authorized" page.
        self.get("/project/freezer_jobs/")
        self.visible("#profile_editor_switcher, .user-menu > a").click()
        self.visible("form[action$='/auth/logout/'] button").click()
        self.visible("#id_username")

    def screenshot(self, name: str) -> Path:
        """Save <name>.png into SCREENSHOTS (docs/screenshots with UPDATE_SCREENSHOTS=1)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture
def horizon(
    request, live_server, keystone_server, chrome, settings, production_frontend
) -> Browser:
    """A logged-out browser on the live server, with Horizon pointed at the real Keystone."""
    settings.OPENSTACK_KEYSTONE_URL = keystone_server.url
    settings.AUTHENTICATION_BACKENDS = ("openstack_auth.backend.KeystoneBackend",)
    settings.OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
    # Horizon's test settings add two fake regions and a domain field to the login form.
    settings.AVAILABLE_REGIONS = []
    settings.OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False
    settings.OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"
    settings.WEBSSO_ENABLED = False
    # Horizon's test settings switch policy checks off (every rule passes); production checks
    # them against the shipped policy files, and so must an end-to-end test of who sees what.
    for name in (
        "POLICY_CHECK_FUNCTION",
        "POLICY_FILES_PATH",
        "POLICY_FILES",
        "POLICY_DIRS",
        "DEFAULT_POLICY_FILES",
    ):
        setattr(settings, name, getattr(dashboard_defaults, name))
    # Horizon's test settings leave out the production front end (no SCSS precompiler, no theme
    # static dirs: pages arrive unstyled and without working JS modals; no header view).  Take
    # those values from openstack_dashboard/settings.py itself.
    for name, value in production_frontend.items():
        setattr(settings, name, value)
    openstack_auth_policy.reset()  # the enforcer caches the policy files it loaded first
    request.addfinalizer(openstack_auth_policy.reset)
    # Horizon's test settings set a 1 s default socket timeout (against accidental network calls
    # in unit tests).  The live server's connections and Horizon's Keystone calls inherit it,
    # and a browser keeps idle keep-alive connections open far longer; WebDriver's page-load
    # timeout and pytest-timeout bound a hang instead.
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(None)
    request.addfinalizer(lambda: socket.setdefaulttimeout(old_timeout))
    _isolate_from_unit_tests()
    browser = Browser(chrome, live_server.url)
    browser.forget_session()  # no session leaks from the previous test
    return browser


# -- the backend, seen through the same API the panels use ----------------------------------------


@pytest.fixture
def freezer_api(keystone_server, transactional_db):
    """``freezer_api(account)`` → a FreezerClient acting as that Keystone account.

    Used to check what the UI really stored and to seed data a test does not create through the
    UI itself (the UI path is covered by test_jobs.test_member_creates_job_through_the_form).
    """
    from freezer_ui.api.client import FreezerClient
    from freezer_ui.api.transports.embedded import EmbeddedTransport

    def client_for(account: demo_keystone.Account) -> FreezerClient:
        ids = keystone_server.accounts[account.username]
        return FreezerClient(
            EmbeddedTransport(),
            project_id=ids.project_id,
            user_id=ids.user_id,
            roles=[account.role],
        )

    return client_for


@pytest.fixture
def agents(keystone_server, transactional_db):
    """Register an agent host in each project, as a starting freezer agent does.

    The job form only offers agents registered in the user's project; returns username →
    client_id.
    """
    from demo.seed import register_client

    registered = {}
    for username, ids in keystone_server.accounts.items():
        registered[username] = register_client(
            project_id=ids.project_id,
            user_id=ids.user_id,
            roles=[ids.account.role],
            hostname=f"{username}-host",
        )
    return registered


# -- the whole story: a shared database file and real job agents ----------------------------------


@pytest.fixture
def story_db(tmp_path, django_db_blocker, settings, transactional_db):
    """The embedded store in a sqlite *file* that the live server and agent processes share.

    pytest-django's test database is in memory (this process only); a job agent is another
    process.  Same recipe as tests/agent/conftest.py::agent_db: an alias of its own, migrated,
    with IMMEDIATE transactions (agents and web threads write concurrently).
    """
    from tests.agent.conftest import shared_sqlite_store

    with shared_sqlite_store("story", tmp_path, settings, django_db_blocker) as path:
        yield path


class AgentProcess:
    """``python -m freezer_ui.agent run --mode embedded`` for one project, as a real process."""

    def __init__(
        self,
        db: Path,
        state_dir: Path,
        ids,
        client_id: str,
        hostname: str,
        root: Path,
        module: str = "freezer_ui.agent",
    ):
        import subprocess

        self.log = state_dir / "agent.log"
        state_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            module,
            "run",
            "--mode",
            "embedded",
            "--settings",
            "tests.agent.agent_settings",
            "--project-id",
            ids.project_id,
            "--user-id",
            ids.user_id,
            "--client-id",
            client_id,
            "--hostname",
            hostname,
            "--state-dir",
            str(state_dir),
            "--poll-interval",
            "0.5",
            "--progress-interval",
            "0.2",
            "--allowed-root",
            str(root),
        ]
        env = dict(os.environ, FREEZER_UI_AGENT_TEST_DB=str(db), PYTHONPATH=str(REPO_ROOT))
        if module != "freezer_ui.agent":
            # tests/agent/slow_agent.py: 1.5 s per MiB backed up or restored.
            env["SLOW_AGENT_SECONDS_PER_MIB"] = "1.5"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the agent ends after its current run (docs/agent.md)
            try:
                self.process.wait(30)
            except Exception:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def story_root(tmp_path, settings):
    """The one directory the panels and the agents may read from and restore into."""
    root = tmp_path / "fence"
    root.mkdir()
    settings.FREEZER_UI_ALLOWED_ROOTS = [str(root)]
    return root


@pytest.fixture
def story_agents(keystone_server, story_db, story_root, tmp_path):
    """``start(username)`` registers a client in that account's project and starts its agent.

    Returns the client_id; the processes are stopped at the end of the test, and a failing
    test shows their log tails.
    """
    from demo.seed import register_client

    started: dict[str, AgentProcess] = {}

    def start(username: str, slow: bool = False) -> str:
        # slow: the agent pauses 1.5 s per MiB it processes (tests/agent/slow_agent.py), so a
        # run lasts long enough for the page to show it in progress.
        ids = keystone_server.accounts[username]
        hostname = f"{username}-story-host"
        client_id = register_client(
            project_id=ids.project_id,
            user_id=ids.user_id,
            roles=[ids.account.role],
            hostname=hostname,
        )
        started[username] = AgentProcess(
            story_db,
            tmp_path / f"agent-{username}",
            ids,
            client_id,
            hostname,
            story_root,
            module="tests.agent.slow_agent" if slow else "freezer_ui.agent",
        )
        return client_id

    start.processes = started  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for agent in started.values():
            agent.stop()
