# ruff: noqa: F405 - the base settings arrive through Horizon's star import, as Horizon documents.
"""Django settings for `make demo`: stock Horizon + freezer-ui (embedded mode) + the real Keystone.

Environment (set by ``demo.run``; the defaults suit a plain ``python manage.py runserver``):

``FREEZER_UI_DEMO_STATE``  state directory (default ``<repo>/.state/demo``): secret key, Horizon's
                           sqlite database (sessions), freezer-ui's embedded database.
``FREEZER_UI_DEMO_KEYSTONE_URL``  Keystone v3 endpoint (default ``http://127.0.0.1:5000/v3``).

The same shape is what an operator puts in ``local_settings.py`` (docs/install.md).
"""

import os
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("FREEZER_UI_DEMO_STATE", REPO_ROOT / ".state" / "demo")).resolve()
STATE_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    from horizon.utils import secret_key

    return secret_key.generate_or_read_from_file(str(STATE_DIR / "secret_key"))


# openstack_dashboard.settings derives things from SECRET_KEY and DEBUG while it is being imported
# (it writes a key file into site-packages when SECRET_KEY is unset, and picks cached template
# loaders when DEBUG is off), and it reads them from ``local.local_settings``.  Handing it that
# module ourselves is Horizon's own override hook, without a file inside site-packages.
_early = types.ModuleType("local.local_settings")
_early.SECRET_KEY = _secret_key()
_early.DEBUG = True
sys.modules["local.local_settings"] = _early

from openstack_dashboard import enabled as _dashboard_enabled  # noqa: E402
from openstack_dashboard.settings import *  # noqa: E402,F403
from openstack_dashboard.utils import settings as _settings_utils  # noqa: E402

from freezer_ui import conf as _freezer_conf  # noqa: E402
from freezer_ui import enabled as _freezer_enabled  # noqa: E402

# -- Horizon ------------------------------------------------------------------------------------

DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
OPENSTACK_KEYSTONE_URL = os.environ.get("FREEZER_UI_DEMO_KEYSTONE_URL", "http://127.0.0.1:5000/v3")
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False
WEBSSO_ENABLED = False

# The demo cloud has no Nova, so Horizon hides the stock Project > Overview and "/" would land on
# "not authorized"; start on the plugin's own overview instead.
HORIZON_CONFIG["user_home"] = WEBROOT + "project/freezer_overview/"

# Assets are compiled on the fly (DEBUG + no offline compression), so no collectstatic/compress
# step, and a change of enabled files cannot leave a stale offline manifest behind.
COMPRESS_OFFLINE = False
STATIC_ROOT = str(STATE_DIR / "static")
MEDIA_ROOT = str(STATE_DIR / "media")

# The stock CACHES point at memcached, which the demo does not run.  Sessions go to the database
# rather than LocMemCache: django-compressor's many per-file keys would otherwise cull login
# sessions out of the cache ("SessionInterrupted"), and db sessions survive a demo restart.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 10000},
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(STATE_DIR / "horizon.sqlite3"),
    },
    "freezer_ui": _freezer_conf.embedded_database(str(STATE_DIR)),
}
DATABASE_ROUTERS = ["freezer_ui.db_router.FreezerUIRouter"]

# -- freezer-ui ---------------------------------------------------------------------------------

FREEZER_UI_API_MODE = "embedded"
FREEZER_UI_STATE_DIR = str(STATE_DIR)
FREEZER_UI_DATABASE = "freezer_ui"
# A demo is reachable by anyone who knows the printed passwords: jobs may only read from and
# write under the demo's own state directory, never the rest of this host.
FREEZER_UI_ALLOWED_ROOTS = [str(STATE_DIR)]

# openstack_dashboard.settings registered its own enabled files already; registering again with
# ours in front is the documented plugin hook.  That second call prepends the same apps and
# static lists once more, so keep the first occurrence of each (Django refuses duplicate apps).
# The dashboard list it computed is dropped first: a list already present counts as a deprecated
# hand-written "dashboards" setting and logs a warning; it is recomputed from the same files.
HORIZON_CONFIG.pop("dashboards", None)
HORIZON_CONFIG.pop("default_dashboard", None)
_settings_utils.update_dashboards(
    [_freezer_enabled, _dashboard_enabled], HORIZON_CONFIG, INSTALLED_APPS
)
INSTALLED_APPS = list(dict.fromkeys(INSTALLED_APPS))
for _key in ("plugins", "angular_modules", "js_files", "js_spec_files", "scss_files"):
    HORIZON_CONFIG[_key] = list(dict.fromkeys(HORIZON_CONFIG.get(_key, [])))

# DEBUG made openstack_dashboard.settings call logging.basicConfig(DEBUG); every keystoneauth
# request body on the console buries the demo's own output.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"console": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "console"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.server": {"level": "INFO"},
        "keystoneauth": {"level": "WARNING"},
        "keystoneclient": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}
