"""Packaging for freezer-ui.

The design card keeps ``static/``, ``templates/`` and ``enabled/`` at the repository root, but
Django and Horizon look for them inside the installed app.  This file is the one place that
bridges the two: ``package_dir`` maps the root folders to ``freezer_ui.static``,
``freezer_ui.templates`` and ``freezer_ui.enabled``, so a wheel carries them inside the package
(``freezer_ui/templates/...``) while a checkout keeps them at the top.  At run time
``freezer_ui.apps.FreezerUIConfig.path`` points Django at whichever of the two layouts exists.
"""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def _data_files_under(folder):
    """Every file under ``folder`` as a glob relative to it (package_data wants relative paths)."""
    root = HERE / folder
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


packages = find_packages(include=["freezer_ui", "freezer_ui.*"])
packages += ["freezer_ui.enabled", "freezer_ui.static", "freezer_ui.templates"]

setup(
    packages=packages,
    package_dir={
        "freezer_ui": "freezer_ui",
        "freezer_ui.enabled": "enabled",
        "freezer_ui.static": "static",
        "freezer_ui.templates": "templates",
    },
    package_data={
        "freezer_ui": ["locale/*/LC_MESSAGES/*", "conf/*.yaml"],
        "freezer_ui.static": _data_files_under("static"),
        "freezer_ui.templates": _data_files_under("templates"),
    },
    include_package_data=False,
)
