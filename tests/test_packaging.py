"""A built wheel, installed into a fresh venv, serves the panels with their templates and statics.

The checkout keeps ``templates/``, ``static/`` and ``enabled/`` at the repository root and maps
them into the package at build time (setup.py, docs/architecture.md section 1).  This test
proves the mapping from the outside: it builds a wheel from a clean copy of the tree, installs
it (not editable) into a new venv whose only view of the checkout is none at all, and renders a
panel there with Horizon's own test harness.

Third-party dependencies come from this venv's site-packages through a plain path line in a
``.pth`` file: a plain path does not run the ``.pth`` files found there, so the editable finder
that maps ``freezer_ui`` to the checkout stays inactive, and the test asserts that.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETTINGS = """
import os
import tempfile

import openstack_dashboard.enabled
from openstack_dashboard.test.settings import *  # noqa: F403
from openstack_dashboard.utils import settings as settings_utils

import freezer_ui.enabled

INSTALLED_APPS = [
    "django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions",
    "django.contrib.staticfiles", "django.contrib.messages", "django.contrib.humanize",
    "openstack_auth", "compressor", "horizon", "openstack_dashboard",
]
HORIZON_CONFIG.pop("dashboards", None)
HORIZON_CONFIG.pop("default_dashboard", None)
settings_utils.update_dashboards(
    [freezer_ui.enabled, openstack_dashboard.enabled], HORIZON_CONFIG, INSTALLED_APPS
)
SECRET_KEY = "packaging-test"
FREEZER_UI_DATABASE = "default"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DATABASE_ROUTERS = ["freezer_ui.db_router.FreezerUIRouter"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
COMPRESS_ROOT = tempfile.mkdtemp()
"""

CHECKS = """
import os
import sys

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.views import serve
from django.test import RequestFactory
from django.urls import reverse
from openstack_dashboard.test.helpers import TestCase, create_mocks

import freezer_ui
import freezer_ui.enabled
from freezer_ui.api import freezer as api_freezer

SITE = os.environ["EXPECTED_SITE"]
CHECKOUT = os.environ["CHECKOUT"]


class InstalledWheelTests(TestCase):
    def test_package_comes_from_the_wheel(self):
        self.assertTrue(freezer_ui.__file__.startswith(SITE), freezer_ui.__file__)
        finders_ = [getattr(f, "__module__", "") or "" for f in sys.meta_path]
        self.assertFalse([m for m in finders_ if "__editable__" in m], finders_)
        self.assertTrue(freezer_ui.enabled.__file__.startswith(SITE))

    @create_mocks({api_freezer: ["job_list"]})
    def test_panel_renders_with_templates_from_the_wheel(self):
        self.mock_job_list.return_value = ([], False)
        res = self.client.get(reverse("horizon:project:freezer_jobs:index"))
        self.assertEqual(res.status_code, 200)
        self.assertContains(res, "No backup jobs yet")
        ours = [t.origin.name for t in res.templates if (t.name or "").startswith("freezer_ui/")]
        self.assertIn("freezer_ui/project/freezer_jobs/index.html",
                      [t.name for t in res.templates])
        self.assertTrue(ours)
        for path in ours:
            self.assertTrue(path.startswith(SITE), path)
            self.assertNotIn(CHECKOUT, path)

    def test_static_file_is_served_from_the_wheel(self):
        found = finders.find("freezer_ui/css/freezer_ui.css")
        self.assertTrue(found and found.startswith(SITE), found)
        request = RequestFactory().get("/static/freezer_ui/css/freezer_ui.css")
        res = serve(request, "freezer_ui/css/freezer_ui.css", insecure=True)
        self.assertEqual(res.status_code, 200)
        self.assertIn(b".freezer-empty-state", b"".join(res.streaming_content))
"""

RUNNER = """
import sys

import django
from django.conf import settings
from django.test.utils import get_runner

django.setup()
failures = get_runner(settings)(verbosity=2).run_tests(["checks"])
sys.exit(bool(failures))
"""


def _run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_serves_the_panels(tmp_path):
    # A clean copy: a stale build/ folder in the checkout would leak old files into the wheel.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
            ".ruff_cache", ".hypothesis", ".state", "bench", "demo",
        ),
    )  # fmt: skip
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(wheels)])
    (wheel,) = wheels.glob("freezer_ui-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).stdout.strip()
    _run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
         "--target", site, str(wheel)]
    )  # fmt: skip
    # Dependencies only: a path line, so that directory's own .pth files (the editable finder
    # among them) are not executed.
    with open(os.path.join(site, "zz_dependencies.pth"), "w") as pth:
        pth.write(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "run"
    work.mkdir()
    (work / "pkg_settings.py").write_text(textwrap.dedent(SETTINGS))
    (work / "checks.py").write_text(textwrap.dedent(CHECKS))
    (work / "runner.py").write_text(textwrap.dedent(RUNNER))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "PYTHONHOME")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="pkg_settings",
        EXPECTED_SITE=site,
        CHECKOUT=ROOT,
        PYTHONDONTWRITEBYTECODE="1",
    )
    result = subprocess.run(
        [str(python), "runner.py"], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 3 tests" in result.stderr
