"""Operator settings of freezer-ui with their defaults (docs/architecture.md section 2).

Read through these functions, never through ``settings.FREEZER_UI_*`` directly, so each default
is written down once.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "FREEZER_UI_API_MODE": "embedded",
    "FREEZER_UI_API_URL": None,
    "FREEZER_UI_API_INSECURE": False,
    "FREEZER_UI_API_CACERT": None,
    "FREEZER_UI_STATE_DIR": "/var/lib/freezer-ui",
    "FREEZER_UI_DATABASE": "freezer_ui",
    "FREEZER_UI_ALLOWED_ROOTS": ["/"],
    # The secret store's master key file (freezer_ui/secrets.py, docs/secrets.md);
    # None = <FREEZER_UI_STATE_DIR>/secret.key.
    "FREEZER_UI_SECRET_KEY_FILE": None,
}
API_MODES = ("embedded", "remote")


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def database_alias() -> str:
    return get("FREEZER_UI_DATABASE")


def allowed_roots() -> list[str]:
    """The normalised path prefixes jobs may back up from and restore into."""
    return [posixpath.normpath(root) for root in get("FREEZER_UI_ALLOWED_ROOTS")]


def path_allowed(path: str, roots: list[str] | None = None) -> bool:
    """Whether ``path`` is absolute and, once ``..`` is resolved, inside an allowed root."""
    if not path.startswith("/"):
        return False
    # normpath folds "/srv/../etc" to "/etc" before the prefix test, so ".." cannot escape.
    normalised = posixpath.normpath(path)
    for root in allowed_roots() if roots is None else roots:
        if root == "/" or normalised == root or normalised.startswith(root.rstrip("/") + "/"):
            return True
    return False


def embedded_database(state_dir: str | None = None) -> dict[str, Any]:
    """The ``DATABASES`` entry for the embedded store: a sqlite file under ``state_dir``.

    Usage in local settings::

        DATABASES["freezer_ui"] = embedded_database("/var/lib/freezer-ui")
        DATABASE_ROUTERS = ["freezer_ui.db_router.FreezerUIRouter"]

    For PostgreSQL, configure the ``freezer_ui`` alias as any Django database instead.
    """
    state_dir = state_dir or DEFAULTS["FREEZER_UI_STATE_DIR"]
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(state_dir, "freezer_ui.sqlite3"),
        # Web workers and the agent write concurrently: wait for the lock rather than fail at
        # once with "database is locked".  IMMEDIATE takes the write lock when a transaction
        # begins, so a read-then-write transaction cannot deadlock into an instant
        # SQLITE_BUSY (the busy timeout does not apply to lock upgrades).
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    }
