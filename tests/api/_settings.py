"""Temporary minimal settings for tests/api while tests/settings.py cannot load yet."""

SECRET_KEY = "freezer-ui-api-tests"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "freezer_ui"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DATABASE_ROUTERS = ["freezer_ui.db_router.FreezerUIRouter"]
FREEZER_UI_DATABASE = "default"
USE_TZ = True
