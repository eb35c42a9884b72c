"""Where the embedded store lives: conf.embedded_database, the router, the migrations."""

import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from freezer_ui import conf
from freezer_ui.api.transports.embedded import EmbeddedTransport
from freezer_ui.db_router import FreezerUIRouter


def test_migrations_match_the_models(db):
    out = io.StringIO()
    call_command("makemigrations", "freezer_ui", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_embedded_database_is_a_sqlite_file_in_the_state_dir(tmp_path):
    entry = conf.embedded_database(str(tmp_path))
    assert entry["ENGINE"] == "django.db.backends.sqlite3"
    assert os.path.dirname(entry["NAME"]) == str(tmp_path)


def test_router_keeps_each_app_in_its_database(settings):
    settings.FREEZER_UI_DATABASE = "freezer_ui"
    router = FreezerUIRouter()
    assert router.allow_migrate("freezer_ui", "freezer_ui") is True
    assert router.allow_migrate("default", "freezer_ui") is False
    assert router.allow_migrate("freezer_ui", "auth") is False
    assert router.allow_migrate("default", "auth") is None
    settings.FREEZER_UI_DATABASE = "default"
    assert router.allow_migrate("default", "freezer_ui") is True
    assert router.allow_migrate("default", "auth") is None


def test_missing_database_alias_is_a_clear_configuration_error(settings):
    settings.FREEZER_UI_DATABASE = "nowhere"
    with pytest.raises(ImproperlyConfigured, match="embedded_database"):
        EmbeddedTransport()


OPERATOR_SETUP = """
import json, sys
import django
from django.conf import settings
from freezer_ui.conf import embedded_database

state_dir = sys.argv[1]
settings.configure(
    SECRET_KEY="x",
    USE_TZ=True,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "freezer_ui"],
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": state_dir + "/horizon.db"},
        "freezer_ui": embedded_database(state_dir),
    },
    DATABASE_ROUTERS=["freezer_ui.db_router.FreezerUIRouter"],
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("migrate", database="freezer_ui", verbosity=0)
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.transports.embedded import EmbeddedTransport
client = FreezerClient(EmbeddedTransport(), project_id="p", user_id="u")
client.clients.create({"client_id": "h", "hostname": "h"})
print(json.dumps(client.clients.list()[0]["client"]["client_id"]))
"""


def test_operator_setup_puts_the_tables_in_their_own_sqlite_file(tmp_path):
    # A fresh interpreter configured the way docs/install.md tells operators to.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OPERATOR_SETUP), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == "h"

    def tables(name):
        with sqlite3.connect(tmp_path / name) as db:
            return {row[0] for row in db.execute("select name from sqlite_master")}

    ours = tables("freezer_ui.sqlite3")
    assert {"freezer_ui_job", "freezer_ui_client", "freezer_ui_backup"} <= ours
    assert "auth_user" not in ours
    assert not any(t.startswith("freezer_ui_") for t in tables("horizon.db"))
    with sqlite3.connect(tmp_path / "freezer_ui.sqlite3") as db:
        assert db.execute("select client_id from freezer_ui_client").fetchall() == [("h",)]
