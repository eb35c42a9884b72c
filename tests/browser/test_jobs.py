"""Backup jobs end to end: the member's form, the admin's all-projects view, tenant isolation,
escaping and schedule validation — all through real Keystone tokens and roles."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from demo.keystone import ADMIN, DEMO, OTHER

JOBS = "/project/freezer_jobs/"
ADMIN_JOBS = "/admin/freezer_jobs/"
ADMIN_BACKUPS = "/admin/freezer_backups/"
MODAL_FORM = ".workflow form"


def open_create_form(horizon):
    horizon.get(JOBS)
    horizon.visible("#jobs__action_create").click()
    horizon.visible(MODAL_FORM)


def step(horizon, slug: str, workflow: str = "create_job"):
    """Wait until the wizard shows step ``slug`` and return its fieldset."""
    return horizon.visible(f"#{workflow}__{slug}")


def next_step(horizon, slug: str, workflow: str = "create_job"):
    """Press Next (Horizon validates the current step on the server) and wait for ``slug``."""
    button = horizon.wait(
        EC.element_to_be_clickable((By.CSS_SELECTOR, ".modal-footer .button-next")),
        message="the wizard's Next button never became clickable",
    )
    button.click()
    return step(horizon, slug, workflow)


def fill_job_form(horizon, agent: str, description: str, schedule: str = "once") -> None:
    """Walk the wizard to its last step: client, engine, storage, schedule (retention left)."""
    step(horizon, "client")
    horizon.type_into("description", description)
    horizon.choose("client_id", agent)
    next_step(horizon, "engine")
    horizon.choose("engine_name", "tar")
    horizon.type_into("path_to_backup", "/srv/www")
    horizon.type_into("backup_name", "www-nightly")
    next_step(horizon, "storage")
    horizon.choose("storage", "local")
    horizon.type_into("container", "/var/backups/freezer")
    next_step(horizon, "schedule")
    horizon.choose("schedule_kind", schedule)


def submit(horizon) -> None:
    # The wizard's final button shows on its last step: jump there through the step tabs
    # (Horizon validates the steps in between on the server).  Clickable, not merely present:
    # while Bootstrap still fades the modal in, a click can land on the backdrop.
    final = horizon.find_all(".modal-footer .button-final")
    if not (final and final[0].is_displayed()):
        horizon.visible("a[data-target$='__retention']").click()
        horizon.visible("fieldset[id$='__retention']")
    button = horizon.wait(
        EC.element_to_be_clickable((By.CSS_SELECTOR, ".modal-footer .button-final")),
        message="the modal's submit button never became clickable",
    )
    button.click()


def job_rows(horizon, table: str = "#jobs") -> list[str]:
    return horizon.row_texts(table)


def wait_for_row(horizon, text: str, table: str = "#jobs"):
    return horizon.wait(
        lambda d: next((r for r in horizon.find_all(f"{table} tbody tr") if text in r.text), None),
        message=f"no row with {text!r} in {table}",
    )


def api_jobs(client) -> list[dict]:
    return list(client.jobs.list(limit=100))


def seed_job(client, agent: str, description: str) -> str:
    return client.jobs.create(
        {
            "description": description,
            "client_id": agent,
            "job_schedule": {},
            "job_actions": [
                {
                    "freezer_action": {
                        "action": "backup",
                        "mode": "fs",
                        "engine_name": "tar",
                        "storage": "local",
                        "path_to_backup": "/srv/db",
                        "backup_name": "db",
                        "container": "/var/backups/freezer",
                    },
                    "max_retries": 3,
                    "max_retries_interval": 60,
                }
            ],
        }
    )


def test_member_creates_job_through_the_form(horizon, agents, freezer_api):
    horizon.login(DEMO)
    open_create_form(horizon)
    fill_job_form(horizon, agents["demo"], "nightly www", schedule="interval")
    horizon.type_into("interval_number", "6")
    horizon.choose("interval_unit", "hours")
    horizon.screenshot("project-jobs-create")
    submit(horizon)

    row = wait_for_row(horizon, "nightly www")
    assert "/srv/www" in row.text and "tar" in row.text and "local" in row.text
    horizon.visible(".alert-success")
    horizon.screenshot("project-jobs")

    # What the form stored, read back through the API as the same user.
    (job,) = api_jobs(freezer_api(DEMO))
    assert job["description"] == "nightly www"
    assert job["project_id"] == horizon_ids(freezer_api, DEMO)["project_id"]
    assert job["client_id"] == agents["demo"]
    assert job["job_schedule"]["schedule_interval"] == "6 hours"
    action = job["job_actions"][0]["freezer_action"]
    assert action["path_to_backup"] == "/srv/www" and action["engine_name"] == "tar"

    # The description links to the job's detail page.
    row.find_element(By.LINK_TEXT, "nightly www").click()
    horizon.wait(lambda d: job["job_id"] in d.current_url, message="detail page not opened")
    assert "nightly www" in horizon.find(".page-header, h1").text
    horizon.screenshot("project-jobs-detail")


def horizon_ids(freezer_api, account) -> dict:
    client = freezer_api(account)
    return {"project_id": client.context.project_id, "user_id": client.context.user_id}


def test_admin_sees_every_projects_jobs_with_their_project(horizon, agents, freezer_api):
    seed_job(freezer_api(DEMO), agents["demo"], "demo database")
    seed_job(freezer_api(OTHER), agents["other"], "other database")

    horizon.login(ADMIN)
    horizon.get(ADMIN_JOBS)
    demo_row = wait_for_row(horizon, "demo database", "#admin_jobs")
    other_row = wait_for_row(horizon, "other database", "#admin_jobs")
    # The project column names the owning project (names come from Keystone).
    assert "demo" in demo_row.text.split() and "other" not in demo_row.text.split()
    assert "other" in other_row.text.split()
    horizon.screenshot("admin-jobs")

    # The admin's own project view still shows only the admin project's jobs.
    horizon.get(JOBS)
    horizon.find("#jobs")
    assert not any("database" in r for r in job_rows(horizon))


@pytest.mark.parametrize("path", [ADMIN_JOBS, ADMIN_BACKUPS])
def test_member_is_refused_on_admin_urls(horizon, agents, freezer_api, path):
    seed_job(freezer_api(OTHER), agents["other"], "other secret job")
    horizon.login(DEMO)
    horizon.get(path)
    # Horizon answers a logged-in user without the admin role with its "not authorized" page
    # (or sends it back to the login page); the admin table is never rendered.
    horizon.wait(
        lambda d: "not authorized" in d.page_source.lower() or "/auth/login/" in d.current_url,
        message=f"{path} was not refused to a member",
    )
    assert not horizon.find_all("#admin_jobs, #admin_backup_groups")
    assert "other secret job" not in horizon.driver.page_source


def test_other_project_cannot_see_or_open_the_job(horizon, agents, freezer_api):
    job_id = seed_job(freezer_api(DEMO), agents["demo"], "demo private job")

    horizon.login(OTHER)
    horizon.get(JOBS)
    horizon.find("#jobs")
    assert not any("demo private job" in r for r in job_rows(horizon))

    for path in (f"{JOBS}{job_id}/", f"{JOBS}{job_id}/update/"):
        horizon.get(path)
        # Horizon redirects to the job list with an error; the job's data never appears.
        horizon.visible(".alert-danger")
        horizon.wait(lambda d: d.current_url.endswith(JOBS), message=f"{path} not redirected")
        assert "demo private job" not in horizon.driver.page_source
        assert "/srv/db" not in horizon.driver.page_source

    # Searching does not reach across projects either.
    horizon.get(f"{JOBS}?jobs__filter_jobs__q=private")
    horizon.find("#jobs")
    assert "demo private job" not in horizon.driver.page_source


def test_description_is_rendered_as_text(horizon, agents, freezer_api):
    evil = "<script>alert(1)</script><b>x</b>"
    horizon.login(DEMO)
    open_create_form(horizon)
    fill_job_form(horizon, agents["demo"], evil)
    submit(horizon)

    row = wait_for_row(horizon, evil)
    # The markup is shown literally, as the link text of the job's name...
    link = row.find_element(By.LINK_TEXT, evil)
    assert link.text == evil
    # ...and not interpreted.
    assert not row.find_elements(By.TAG_NAME, "b")
    assert not horizon.find_all("#jobs b, .messages b, .alert b")
    with pytest.raises(NoAlertPresentException):
        horizon.driver.switch_to.alert.text  # noqa: B018 - raises if no alert is open

    (job,) = api_jobs(freezer_api(DEMO))
    assert job["description"] == evil  # stored as typed, escaped only when shown

    horizon.get(f"{JOBS}{job['job_id']}/")
    header = horizon.visible(".page-header, h1")
    assert evil in header.text
    assert not horizon.find_all(".page-header b, h1 b, .detail b")
    with pytest.raises(NoAlertPresentException):
        horizon.driver.switch_to.alert.text  # noqa: B018


def test_invalid_schedule_shows_field_error_and_saves_nothing(horizon, agents, freezer_api):
    horizon.login(DEMO)
    open_create_form(horizon)
    fill_job_form(horizon, agents["demo"], "never saved", schedule="interval")
    # "Repeat every…" without a number: Next asks the server, which refuses the step.
    horizon.visible(".modal-footer .button-next").click()

    schedule = step(horizon, "schedule")
    error = horizon.visible("#create_job__schedule .has-error .help-block")
    assert "repeat" in error.text.lower()
    field = error.find_element(By.XPATH, "./ancestor::*[contains(@class,'form-group')][1]")
    assert field.find_elements(By.NAME, "interval_number")
    assert schedule.is_displayed()  # the wizard stays on the step
    horizon.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    horizon.screenshot("project-jobs-create-error")

    assert api_jobs(freezer_api(DEMO)) == []
    horizon.get(JOBS)
    horizon.find("#jobs")
    assert not any("never saved" in r for r in job_rows(horizon))


def test_wizard_retention_then_clone(horizon, agents, freezer_api):
    """The wizard's whole path: excludes, retention as an admin action, then a clone."""
    horizon.login(DEMO)
    open_create_form(horizon)
    step(horizon, "client")
    horizon.type_into("description", "etc with retention")
    horizon.choose("client_id", agents["demo"])
    next_step(horizon, "engine")
    horizon.choose("engine_name", "tar")
    # Per-engine fields: tar's are shown, nova's is not.
    assert horizon.visible("[name='exclude']").is_displayed()
    assert not horizon.find("[name='nova_inst_id']").is_displayed()
    horizon.type_into("path_to_backup", "/srv/www")
    horizon.type_into("exclude", "*.tmp")
    horizon.type_into("backup_name", "etc-kept")
    next_step(horizon, "storage")
    horizon.choose("storage", "local")
    horizon.type_into("container", "/var/backups/freezer")
    next_step(horizon, "schedule")
    horizon.choose("schedule_kind", "once")
    next_step(horizon, "retention")
    horizon.type_into("keep_last", "7")
    horizon.screenshot("project-jobs-wizard-retention")
    submit(horizon)
    wait_for_row(horizon, "etc with retention")

    (job,) = api_jobs(freezer_api(DEMO))
    backup, admin = (a["freezer_action"] for a in job["job_actions"])
    assert backup["exclude"] == "*.tmp" and backup["engine_name"] == "tar"
    assert admin["action"] == "admin" and admin["keep_last"] == 7
    assert admin["backup_name"] == "etc-kept"

    # Clone from the row: the wizard opens filled in, under a new name.
    row = wait_for_row(horizon, "etc with retention")
    toggle = row.find_elements(By.CSS_SELECTOR, ".dropdown-toggle")
    if toggle:
        toggle[0].click()
    horizon.visible(f"#jobs__row_{job['job_id']}__action_clone").click()
    step(horizon, "client")
    description = horizon.visible("[name='description']")
    assert description.get_attribute("value") == "Copy of etc with retention"
    submit(horizon)
    wait_for_row(horizon, "Copy of etc with retention")

    jobs = {j["description"]: j for j in api_jobs(freezer_api(DEMO))}
    copy = jobs["Copy of etc with retention"]
    assert copy["job_id"] != job["job_id"]
    assert [a["freezer_action"] for a in copy["job_actions"]] == [
        a["freezer_action"] for a in job["job_actions"]
    ]


def test_engine_and_storage_lists_follow_the_chosen_agent(horizon, agents, freezer_api):
    # A second agent of the demo project that registered tar and local storage only.
    freezer_api(DEMO).clients.create(
        {"client_id": "tar-only-host", "hostname": "tar-only-host",
         "supported_engines": ["tar"], "supported_storages": ["local"]}
    )  # fmt: skip
    horizon.login(DEMO)
    open_create_form(horizon)

    def offered(name):
        select = horizon.find(f"select[name='{name}']")
        boxes = select.find_elements(By.XPATH, "./ancestor::*[contains(@class,'themable-select')]")
        if not boxes:  # a plain <select>: what the user can pick is what is enabled
            options = select.find_elements(By.TAG_NAME, "option")
            return [o.get_attribute("value") for o in options if not o.get_property("disabled")]
        box = boxes[0]
        box.find_element(By.CSS_SELECTOR, ".dropdown-toggle").click()
        values = [
            a.get_attribute("data-select-value")
            for a in box.find_elements(By.CSS_SELECTOR, "a[data-select-value]")
            if a.is_displayed()
        ]
        box.find_element(By.CSS_SELECTOR, ".dropdown-toggle").click()  # close it again
        return values

    step(horizon, "client")
    horizon.type_into("description", "narrowed")
    horizon.choose("client_id", "tar-only-host")
    next_step(horizon, "engine")
    assert offered("engine_name") == ["tar"]
    horizon.type_into("path_to_backup", "/srv/www")
    horizon.type_into("backup_name", "www")
    next_step(horizon, "storage")
    assert offered("storage") == ["local"]

    # Back to the first step: the demo agent registered every engine, and the list widens.
    horizon.visible("a[data-target='#create_job__client']").click()
    step(horizon, "client")
    horizon.choose("client_id", agents["demo"])
    horizon.visible("a[data-target='#create_job__engine']").click()
    step(horizon, "engine")
    assert {"tar", "rsync", "nova"} <= set(offered("engine_name"))
