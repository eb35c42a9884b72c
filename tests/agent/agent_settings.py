"""Settings for agent subprocesses in tests: the test settings on a shared sqlite file."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["FREEZER_UI_AGENT_TEST_DB"],
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    }
}
FREEZER_UI_DATABASE = "default"
