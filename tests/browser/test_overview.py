"""Both Overview pages in Chromium, against the real Keystone: the Rickshaw charts draw (the
SVG the library creates is there), the numbers match the seeded records, nothing leaks between
projects, and each page is saved as a screenshot for the docs."""

from __future__ import annotations

import time

from selenium.webdriver.common.action_chains import ActionChains

from demo.keystone import ADMIN, DEMO, OTHER
from tests.browser.test_panels import assert_panel_ok

DAY = 86400


def seed_backups(client, now: int, name: str, days: int = 10) -> int:
    """One backup a day for ``days`` days, less new data each day, and one failure.

    Returns the bytes stored, as the records say.
    """
    stored = 0
    for age in range(days, 0, -1):
        new = 50 * 1024**2 * age // days
        client.backups.create(
            {
                "backup_name": name,
                "hostname": f"{name}-host",
                "container": "/var/backups/freezer",
                "time_stamp": now - age * DAY + 60,
                "size": 200 * 1024**2,
                "stored_bytes": new // 2,
                "new_bytes": new,
                "status": "available",
            }
        )
        stored += new // 2
    client.backups.create(
        {
            "backup_name": name,
            "hostname": f"{name}-host",
            "time_stamp": now - 3600,
            "status": "error",
            "error": "source path vanished",
        }
    )
    return stored


def wait_for_chart(horizon, css: str) -> None:
    # charts.js marks a chart drawn after Rickshaw rendered it; the SVG shapes are Rickshaw's.
    horizon.find(f"{css}[data-drawn='true']")
    assert horizon.find_all(f"{css} svg"), f"no SVG in {css}"


def test_overview_charts_draw_for_member_and_admin(horizon, agents, freezer_api):
    now = int(time.time())
    seed_backups(freezer_api(DEMO), now, "www")
    seed_backups(freezer_api(OTHER), now, "other-secret", days=3)

    horizon.login(DEMO)
    horizon.get("/project/freezer_overview/")
    assert_panel_ok(horizon, None)
    for chart in ("stored", "new", "dedup"):
        wait_for_chart(horizon, f"#freezer-chart-{chart}")
    assert horizon.find_all("#freezer-chart-stored svg path")  # the area
    assert len(horizon.find_all("#freezer-chart-new svg rect")) >= 10  # a bar per backup day
    assert horizon.find_all("#freezer-chart-dedup svg circle")  # the ratio's points
    assert "Failed backups: 1" in horizon.find("#freezer-usage-summary").text
    assert "source path vanished" in horizon.find("#freezer-overview-failures").text
    assert "other-secret" not in horizon.driver.page_source
    errors = [e["message"] for e in horizon.driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    horizon.screenshot("project-overview-charts")

    horizon.login(ADMIN)
    horizon.get("/admin/freezer_overview/")
    assert_panel_ok(horizon, "#project_totals")
    wait_for_chart(horizon, "#freezer-chart-projects")
    assert len(horizon.find_all("#freezer-chart-projects svg rect")) == 2  # demo and other
    names = horizon.find("#project_totals tbody").text
    assert "demo" in names and "other" in names
    # Hovering the right half of the first bar still names its project (Rickshaw's hover box,
    # fed escaped text).
    chart = horizon.find("#freezer-chart-projects svg")
    ActionChains(horizon.driver).move_to_element_with_offset(
        chart, -chart.size["width"] // 5, 0
    ).perform()
    label = horizon.visible("#freezer-chart-projects .detail .x_label")
    assert label.text == "demo"  # the most stored comes first
    horizon.screenshot("admin-overview")

    horizon.get("/admin/freezer_clients/")
    assert_panel_ok(horizon, "#admin_clients")
    assert "demo-host" in horizon.find("#admin_clients tbody").text
    horizon.screenshot("admin-clients")
