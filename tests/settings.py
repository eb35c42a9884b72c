"""Django settings for the freezer-ui unit tests.

Built the way production builds Horizon: Horizon's own test settings, then the plugin's enabled
files registered next to openstack_dashboard's with ``update_dashboards`` (as manila-ui's
``tests/settings.py`` does), so a wrong enabled file fails here and not only in a deployment.
"""

import atexit
import os
import shutil
import tempfile

import openstack_dashboard.enabled
from openstack_dashboard.test.settings import *  # noqa: F403
from openstack_dashboard.utils import settings as settings_utils

import freezer_ui.enabled

# Horizon's test settings already ran update_dashboards for openstack_dashboard alone; start
# again from its fixed app list so the panel customisations are not applied twice.
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "django.contrib.messages",
    "django.contrib.humanize",
    "openstack_auth",
    "compressor",
    "horizon",
    "openstack_dashboard",
]
# "dashboards" is recomputed from the enabled files; left in place it would count as an
# operator override (and log a deprecation warning).
HORIZON_CONFIG.pop("dashboards", None)  # noqa: F405
HORIZON_CONFIG.pop("default_dashboard", None)  # noqa: F405
settings_utils.update_dashboards(
    [freezer_ui.enabled, openstack_dashboard.enabled],
    HORIZON_CONFIG,  # noqa: F405
    INSTALLED_APPS,
)
# The second pass appended openstack_dashboard's own JS/angular entries again.
for _key in ("angular_modules", "js_files", "js_spec_files", "scss_files", "plugins"):
    HORIZON_CONFIG[_key] = list(dict.fromkeys(HORIZON_CONFIG.get(_key, [])))  # noqa: F405

# A fixed key: Horizon's default writes a key file into the temp dir, which is shared state.
SECRET_KEY = "freezer-ui-tests-not-secret"

# The embedded transport's models live in the test database (docs/architecture.md section 2).
FREEZER_UI_DATABASE = "default"
FREEZER_UI_STATE_DIR = tempfile.mkdtemp(prefix="freezer-ui-tests-")
# Removed when this process exits: every test process (and every agent a test starts with these
# settings) makes its own, and hundreds of them piled up in /tmp before.
atexit.register(shutil.rmtree, FREEZER_UI_STATE_DIR, ignore_errors=True)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(FREEZER_UI_STATE_DIR, "test.sqlite3"),
        "TEST": {"NAME": ":memory:"},
    }
}
DATABASE_ROUTERS = ["freezer_ui.db_router.FreezerUIRouter"]

# NOTES-platform: LocMemCache's 300-entry cull plus django-compressor's per-file keys evicts
# login sessions; sessions get their own alias and the cull limit is raised.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "freezer-ui-default",
        "OPTIONS": {"MAX_ENTRIES": 10000},
    },
    "sessions": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "freezer-ui-sessions",
        "OPTIONS": {"MAX_ENTRIES": 10000},
    },
}
SESSION_CACHE_ALIAS = "sessions"
