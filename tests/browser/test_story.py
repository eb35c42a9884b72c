"""The whole story in a browser: real Keystone, headless Chromium, real job agents.

A member creates a backup job in the Jobs panel and starts it; an agent process backs the
directory up into a repository; the member browses the generation in the Backups panel,
downloads one file (its bytes are compared with the source), restores one directory of the
generation, ticked in the tree picker, into a new directory through the restore wizard (the
restored tree is compared with the source's directory),
and the admin sees both projects' backups.  Every page is saved as a screenshot
(docs/screenshots/story-*.png with UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from demo.keystone import ADMIN, DEMO, OTHER

# A backup or restore of a few MiB takes seconds; a loaded CI machine gets more.
RUN_WAIT = float(os.environ.get("BROWSER_TEST_RUN_WAIT", 180))


def make_source(root: Path) -> Path:
    """Small text files, nested binaries, an empty directory and a symlink."""
    src = root / "src"
    (src / "docs").mkdir(parents=True)
    for i in range(12):
        (src / "docs" / f"note-{i}.txt").write_text(f"note {i}\n" * (i + 1))
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "nested" / "deeper" / "blob.bin").write_bytes(os.urandom(1024 * 1024 + 17))
    (src / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    (src / "empty").mkdir()
    (src / "latest").symlink_to("docs/note-3.txt")
    os.chmod(src / "docs" / "note-0.txt", 0o600)
    return src


def tree_of(root: Path) -> dict[str, tuple]:
    """Relative path -> (kind, permission bits, content digest or link target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", None, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[rel] = ("file", stat.S_IMODE(st.st_mode), digest)
    return found


def wait_until(predicate, timeout=RUN_WAIT, interval=0.5, message="", on_timeout=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = on_timeout() if on_timeout else ""
    raise AssertionError(f"timed out: {message}\n{detail}")


def wizard_next(horizon) -> None:
    """Press the wizard's Next and wait until the following step is the active tab."""
    tabs = horizon.find_all(".wizard-tabs li")
    current = next(i for i, li in enumerate(tabs) if "active" in li.get_attribute("class"))
    horizon.wait(
        EC.element_to_be_clickable((By.CSS_SELECTOR, ".modal-footer .button-next")),
        message="no clickable Next button",
    ).click()
    horizon.wait(
        lambda d: (
            "active" in horizon.find_all(".wizard-tabs li")[current + 1].get_attribute("class")
        ),
        message=f"the wizard did not move past step {current + 1}: {step_errors(horizon)}",
    )


def step_errors(horizon) -> list[str]:
    return [e.text for e in horizon.find_all(".help-block, .alert-danger") if e.text.strip()]


def set_datetime(horizon, name: str, value: str) -> None:
    # A datetime-local input is a native date picker: its keystrokes depend on the browser's
    # locale.  Set its value as the picker would, then fire the events the page listens to.
    field = horizon.visible(f"[name='{name}']")
    horizon.driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        field,
        value,
    )


def wait_for_job_row(horizon, description: str, state: str):
    """The Jobs table row of ``description`` once it shows ``state`` (the page refreshes it)."""

    def row(driver):
        driver.refresh()
        found = [r for r in horizon.find_all("#jobs tbody tr") if description in r.text]
        return found[0] if found and state in found[0].text else None

    return horizon.wait(row, RUN_WAIT, f"the job {description!r} never showed {state!r}")


def backups_of(client, name: str) -> list[dict]:
    return [
        b
        for b in client.backups.list(limit=100)
        if (b.get("backup_metadata") or {}).get("backup_name") == name
    ]


def available(client, name: str) -> dict | None:
    done = [b for b in backups_of(client, name) if b.get("status") == "available"]
    return done[0] if done else None


def agent_logs(story_agents):
    def tails():
        return "\n".join(
            f"--- agent {name}\n{agent.log_tail()}"
            for name, agent in story_agents.processes.items()
        )

    return tails


def test_the_whole_story(horizon, story_agents, story_root, freezer_api, tmp_path):
    src = make_source(story_root)
    repo = story_root / "repo"
    target = story_root / "restored"
    logs = agent_logs(story_agents)
    demo_client = story_agents("demo", slow=True)
    other_client = story_agents("other")

    # Another project's backup, seeded through the API and run by its own agent: the member
    # must never see it, the admin must.
    other_src = story_root / "other-src"
    other_src.mkdir()
    (other_src / "secret.txt").write_text("other project's data\n")
    freezer_api(OTHER).jobs.create(
        {
            "description": "other nightly",
            "client_id": other_client,
            "job_schedule": {},
            "job_actions": [
                {
                    "freezer_action": {
                        "action": "backup",
                        "mode": "fs",
                        "engine_name": "tar",
                        "storage": "local",
                        "backup_name": "other-data",
                        "path_to_backup": str(other_src),
                        "container": str(story_root / "other-repo"),
                    },
                    "max_retries": 0,
                    "max_retries_interval": 1,
                }
            ],
        }
    )

    # -- 1. the member creates a backup job in the Jobs panel ------------------------------------
    horizon.login(DEMO)
    horizon.get("/project/freezer_jobs/create/")
    horizon.visible(".workflow form[action$='/freezer_jobs/create/']")
    horizon.type_into("description", "story nightly")
    horizon.choose("client_id", demo_client)
    wizard_next(horizon)
    horizon.choose("engine_name", "tar")
    horizon.type_into("backup_name", "story-data")
    horizon.type_into("path_to_backup", str(src))
    wizard_next(horizon)
    horizon.choose("storage", "local")
    horizon.type_into("container", str(repo))
    wizard_next(horizon)
    # "Once": the agent runs it as soon as it sees it (docs/agent.md "Schedules").
    horizon.choose("schedule_kind", "once")
    horizon.screenshot("story-01-jobs-create")
    wizard_next(horizon)
    horizon.wait(
        EC.element_to_be_clickable((By.CSS_SELECTOR, ".modal-footer .button-final")),
        message="no clickable Create button",
    ).click()
    horizon.wait(lambda d: d.current_url.endswith("/project/freezer_jobs/"), message="not created")
    jobs = freezer_api(DEMO).jobs.list(limit=100)
    (job,) = [j for j in jobs if j["description"] == "story nightly"]
    assert job["client_id"] == demo_client
    assert job["job_actions"][0]["freezer_action"]["path_to_backup"] == str(src)

    # -- 2. ... which runs once; then the member starts it again and watches it -------------
    first = wait_until(
        lambda: available(freezer_api(DEMO), "story-data"),
        message="the member's first backup never became available",
        on_timeout=logs,
    )
    row = wait_for_job_row(horizon, "story nightly", "Completed")
    # A changed file is read again (unchanged ones cost one lstat): the next run has 6 MiB to
    # go through at the slowed agent's pace (~9 s), time for a few of Horizon's row polls.
    (src / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    row.find_element(By.CSS_SELECTOR, "[id$='__action_start']").click()
    horizon.visible(".alert-success")

    # Live progress: Horizon's ajax row update fills the Progress cell while the run goes on,
    # with no page reload (this wait never refreshes).
    def progress_shown(driver):
        try:
            rows = [r for r in horizon.find_all("#jobs tbody tr") if "story nightly" in r.text]
            bars = rows[0].find_elements(By.CSS_SELECTOR, ".freezer-progress") if rows else []
            text = rows[0].text if bars else ""
            # percent (estimated from the first generation), rate and the phase
            return text if "%" in text and "/s" in text else None
        except StaleElementReferenceException:  # the row was just replaced by an update
            return None

    shown = horizon.wait(progress_shown, RUN_WAIT, "the Jobs table never showed the progress")
    assert "running" in shown.lower() and "backup" in shown, shown
    horizon.screenshot("story-01b-jobs-live-progress")
    record = wait_until(
        lambda: next(
            (
                b
                for b in backups_of(freezer_api(DEMO), "story-data")
                if b["status"] == "available" and b["backup_id"] != first["backup_id"]
            ),
            None,
        ),
        message="the run started from the Jobs panel never made a second backup",
        on_timeout=logs,
    )
    wait_for_job_row(horizon, "story nightly", "Completed")
    # The job's run history: both runs, ended in success.
    horizon.get(f"/project/freezer_jobs/{job['job_id']}/")
    horizon.visible(".page-header")
    horizon.driver.find_element(By.LINK_TEXT, "Runs").click()
    horizon.wait(
        lambda d: d.find_element(By.ID, "content_body").text.lower().count("success") >= 2,
        message="the job page never showed both runs' success",
    )
    horizon.screenshot("story-02-job-detail")
    meta = record["backup_metadata"]
    assert meta["files"] >= 15 and meta["generation_id"]

    # -- 3. browses the generation and downloads one file ----------------------------------------
    horizon.get("/project/freezer_backups/")
    horizon.wait(
        lambda d: "story-data" in d.find_element(By.ID, "content_body").text,
        message="the backup is not in the Backups panel",
    )
    assert "other-data" not in horizon.find("#content_body").text
    horizon.screenshot("story-03-backups")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    horizon.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    horizon.get(f"/project/freezer_backups/{record['backup_id']}/")
    horizon.visible(".freezer-listing")
    horizon.driver.find_element(By.LINK_TEXT, "nested/").click()
    horizon.driver.find_element(By.LINK_TEXT, "deeper/").click()
    blob_row = horizon.wait(
        lambda d: next(
            (r for r in horizon.find_all("tr.freezer-entry") if "blob.bin" in r.text), None
        ),
        message="blob.bin is not listed in nested/deeper",
    )
    horizon.screenshot("story-04-browse")
    blob_row.find_element(By.LINK_TEXT, "Download").click()
    downloaded = wait_until(
        lambda: [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")],
        timeout=60,
        message="the download never finished",
    )
    assert [p.name for p in downloaded] == ["blob.bin"]
    assert downloaded[0].read_bytes() == (src / "nested" / "deeper" / "blob.bin").read_bytes()

    # -- 4. restores the generation into a new directory through the wizard ---------------------
    horizon.get("/project/freezer_restore/")
    restore_row = horizon.wait(
        lambda d: next(
            (r for r in horizon.find_all("#restore_points tbody tr") if "story-data" in r.text),
            None,
        ),
        message="the backup is not offered for restore",
    )
    horizon.screenshot("story-05-restore-panel")
    restore_row.find_element(By.CSS_SELECTOR, "a[id$='__action_restore']").click()
    horizon.visible(".workflow form[action$='/freezer_restore/wizard/']")
    # Step 1: the state at a point in time, shown resolved before anything is confirmed.
    horizon.choose("when", "point_in_time")
    set_datetime(horizon, "point_in_time", "2001-01-01T00:00")
    resolved = horizon.visible("#restore-resolved")
    horizon.wait(
        lambda d: "before the first generation" in resolved.text,
        message=f"a point in time before any backup was not refused: {resolved.text!r}",
    )
    set_datetime(horizon, "point_in_time", "2100-01-01T00:00")
    horizon.wait(
        lambda d: meta["generation_id"][:12] in resolved.text,
        message=f"the point in time did not resolve to the backup: {resolved.text!r}",
    )
    horizon.screenshot("story-06-restore-wizard-generation")
    wizard_next(horizon)
    # Step 2: the lazy tree lists the generation's root; only docs/ is restored.
    horizon.wait(
        lambda d: (
            {"docs/", "nested/", "big.bin"}
            <= {e.text.strip() for e in horizon.find_all("#restore-tree .freezer-tree-name")}
        ),
        message="the tree picker did not list the generation's root",
    )
    horizon.choose("scope", "selected")
    docs = next(
        li for li in horizon.find_all("#restore-tree li") if li.text.strip().startswith("docs/")
    )
    docs.find_element(By.CSS_SELECTOR, ".freezer-tree-toggle").click()
    horizon.wait(
        lambda d: "note-11.txt" in docs.text, message="docs/ did not open in the tree picker"
    )
    docs.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    count = horizon.find("#restore-selected-count")
    horizon.wait(lambda d: count.get_attribute("textContent") == "1", message="not selected")
    assert horizon.find("input[name='paths']").get_attribute("value") == '["docs"]'
    horizon.screenshot("story-07-restore-wizard-paths")
    wizard_next(horizon)
    # Step 3: the agent, a new directory inside the allowed roots, never overwrite.
    horizon.choose("client_id", demo_client)
    horizon.type_into("target", str(target))
    horizon.choose("overwrite", "never")
    wizard_next(horizon)
    # Step 4: review, confirm.
    review = horizon.visible("#restore-review")
    assert str(target) in review.text and meta["generation_id"][:12] in review.text
    # Horizon draws the checkbox itself: the user clicks its label.
    horizon.visible(".themable-checkbox label[for='id_confirm']").click()
    assert horizon.find("#id_confirm").is_selected()
    horizon.screenshot("story-08-restore-wizard-review")
    horizon.wait(
        EC.element_to_be_clickable((By.CSS_SELECTOR, ".modal-footer .button-final")),
        message="no clickable Restore button",
    ).click()
    # The progress page follows the run to its summary.
    horizon.wait(lambda d: "/freezer_restore/jobs/" in d.current_url, message="no progress page")
    summary = horizon.wait(
        EC.visibility_of_element_located((By.CSS_SELECTOR, ".freezer-restore-summary")),
        RUN_WAIT,
        "the restore never reported its summary",
    )
    assert not horizon.find(".freezer-restore-error").is_displayed()
    horizon.wait(
        lambda d: (
            d.find_element(By.ID, "restore-progress").get_attribute("data-state") == "success"
        ),
        message="the restore did not end in success",
    )
    assert "Yes" in summary.find_element(By.CSS_SELECTOR, "[data-field='verified']").text
    horizon.screenshot("story-09-restore-progress")
    # Only the ticked directory came back, identical to the source's.
    assert tree_of(target) == {
        rel: entry
        for rel, entry in tree_of(src).items()
        if rel == "docs" or rel.startswith("docs/")
    }

    # The same target again, with "never overwrite": refused on its field, nothing written.
    restored = tree_of(target)
    horizon.get(f"/project/freezer_restore/wizard/?backup_id={record['backup_id']}")
    wizard_next(horizon)
    wizard_next(horizon)
    horizon.choose("client_id", demo_client)
    horizon.type_into("target", str(target))
    horizon.choose("overwrite", "never")
    horizon.find(".modal-footer .button-next").click()
    error = horizon.visible("#restore_wizard__target .has-error .help-block")
    assert "already exists and is not empty" in error.text
    horizon.screenshot("story-10-restore-wizard-existing-target")
    assert tree_of(target) == restored

    # Another project's backup ID in the URL: a clear error, nothing of it shown.
    theirs = available(freezer_api(OTHER), "other-data") or wait_until(
        lambda: available(freezer_api(OTHER), "other-data"),
        message="the other project's backup never became available",
        on_timeout=logs,
    )
    horizon.get(f"/project/freezer_restore/wizard/?backup_id={theirs['backup_id']}")
    horizon.wait(lambda d: d.current_url.endswith("/project/freezer_restore/"), message="shown")
    assert "No such backup in this project" in horizon.find(".alert-danger").text
    assert "other-data" not in horizon.find("#content_body").text

    # -- 5. the admin sees both projects' backups -------------------------------------------------
    horizon.login(ADMIN)
    horizon.get("/admin/freezer_backups/")
    horizon.wait(
        lambda d: all(
            name in d.find_element(By.ID, "content_body").text
            for name in ("story-data", "other-data")
        ),
        message="the admin does not see both projects' backups",
    )
    rows = horizon.row_texts("#content_body table.datatable")
    assert any("story-data" in r and "demo" in r.split() for r in rows), rows
    assert any("other-data" in r and "other" in r.split() for r in rows), rows
    horizon.screenshot("story-11-admin-backups")
