"""Every freezer-ui panel renders for the role it is meant for, against the real Keystone, with
no error message on the page (each one is also the screenshot used in the docs)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from demo.keystone import ADMIN, DEMO
from tests.browser.test_jobs import seed_job

PROJECT_PANELS = [
    ("freezer_overview", None),
    ("freezer_jobs", "#jobs"),
    ("freezer_backups", "#backup_groups"),
    ("freezer_restore", "#restore_points"),
    ("freezer_clients", "#clients"),
    ("freezer_sessions", "#sessions"),
    ("freezer_secrets", "#secrets"),
]
ADMIN_PANELS = [
    ("freezer_jobs", "#admin_jobs"),
    ("freezer_backups", "#admin_backup_groups"),
    ("freezer_overview", "#project_totals"),
    ("freezer_clients", "#admin_clients"),
]


def assert_panel_ok(horizon, table_css: str | None) -> None:
    horizon.visible(".page-header")
    if table_css:
        horizon.find(table_css)
    # Horizon shows failed API calls ("Unable to retrieve ...") as error alerts.
    errors = [e.text for e in horizon.find_all(".alert-danger") if e.text.strip()]
    assert errors == []
    # Every style sheet and script arrived (a broken asset pipeline still renders the HTML).
    broken = [
        entry["message"]
        for entry in horizon.driver.get_log("browser")
        if entry["level"] == "SEVERE" and "/static/" in entry["message"]
    ]
    assert broken == []
    # The panel is the active entry of the side navigation (registered where it should be).
    assert horizon.find_all("#sidebar .openstack-panel.active, .nav-sidebar .active")


@pytest.mark.parametrize(("slug", "table"), PROJECT_PANELS, ids=[p[0] for p in PROJECT_PANELS])
def test_project_panel_renders_for_a_member(horizon, agents, freezer_api, slug, table):
    seed_job(freezer_api(DEMO), agents["demo"], "www nightly")
    horizon.login(DEMO)
    horizon.get(f"/project/{slug}/")
    assert_panel_ok(horizon, table)
    if slug == "freezer_jobs":
        assert horizon.find_all("#jobs tbody tr")[0].text.startswith("www nightly")
    if slug == "freezer_clients":
        # The agent registered for the project is listed.
        assert "demo-host" in horizon.find("#clients tbody").text
    horizon.screenshot(f"project-{slug.removeprefix('freezer_')}")


@pytest.mark.parametrize(("slug", "table"), ADMIN_PANELS, ids=[p[0] for p in ADMIN_PANELS])
def test_admin_panel_renders_for_the_admin(horizon, agents, freezer_api, slug, table):
    seed_job(freezer_api(DEMO), agents["demo"], "www nightly")
    horizon.login(ADMIN)
    horizon.get(f"/admin/{slug}/")
    assert_panel_ok(horizon, table)
    horizon.screenshot(f"admin-{slug.removeprefix('freezer_')}")


def test_member_navigation_has_no_admin_backup_panels(horizon):
    horizon.login(DEMO)
    horizon.get("/project/freezer_jobs/")
    horizon.visible(".page-header")
    links = [a.get_attribute("href") or "" for a in horizon.driver.find_elements(By.TAG_NAME, "a")]
    assert any(link.endswith("/project/freezer_jobs/") for link in links)
    assert not any("/admin/" in link for link in links)
