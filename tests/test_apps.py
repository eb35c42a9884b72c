"""The app config: where templates come from, and refusing to run beside freezer-web-ui."""

import importlib.metadata
import os
from unittest import mock

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from freezer_ui import apps as freezer_apps


def test_app_path_holds_the_templates_and_static_files() -> None:
    config = apps.get_app_config("freezer_ui")
    assert os.path.isdir(os.path.join(config.path, "templates", "freezer_ui"))
    assert os.path.isdir(os.path.join(config.path, "static", "freezer_ui"))


def test_start_up_refuses_an_installed_freezer_web_ui() -> None:
    fake = mock.Mock(version="19.0.0")

    def distribution(name: str):
        if name == "freezer-web-ui":
            return fake
        raise importlib.metadata.PackageNotFoundError(name)

    config = apps.get_app_config("freezer_ui")
    with mock.patch.object(freezer_apps.importlib.metadata, "distribution", distribution):
        with pytest.raises(ImproperlyConfigured, match="freezer-web-ui 19.0.0 is installed"):
            config.ready()


def test_start_up_without_freezer_web_ui_passes() -> None:
    apps.get_app_config("freezer_ui").ready()
