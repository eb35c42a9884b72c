"""Logging in to Horizon through the real Keystone: the infrastructure every other browser test
stands on."""

from selenium.webdriver.common.by import By

from demo.keystone import ADMIN, DEMO, OTHER, Account


def test_member_logs_in_and_sees_own_project(horizon):
    horizon.login(DEMO)
    horizon.get("/identity/")
    names = horizon.wait(
        lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, "table tbody td")] or None,
        message="no project rows",
    )
    # Keystone lists only the projects the user has a role on.
    assert "demo" in names
    assert "other" not in names and "admin" not in names
    # The project switcher in the header names the scoped project.
    assert horizon.find("#tenant_switcher, .context-project").text.strip().startswith("demo")


def test_admin_logs_in(horizon):
    horizon.login(ADMIN)
    horizon.get("/identity/")
    horizon.wait(
        lambda d: (
            {"admin", "demo", "other"}
            <= {c.text for c in d.find_elements(By.CSS_SELECTOR, "table tbody td")}
        ),
        message="the admin's Projects page does not list all three projects",
    )


def test_wrong_password_is_refused(horizon):
    horizon.get("/auth/login/")
    horizon.visible("#id_username").send_keys(OTHER.username)
    horizon.driver.find_element(By.ID, "id_password").send_keys("not-" + OTHER.password)
    horizon.driver.find_element(By.ID, "loginBtn").click()
    error = horizon.visible(".alert-danger, .login .error")
    assert "Invalid credentials" in error.text
    assert "/auth/login/" in horizon.driver.current_url


def test_logout_ends_the_session(horizon):
    horizon.login(Account(DEMO.username, DEMO.password, DEMO.project, DEMO.role))
    horizon.logout()
    horizon.get("/identity/")
    # Logged out: Horizon sends the browser back to the login page.
    horizon.visible("#id_username")
    assert "/auth/login/" in horizon.driver.current_url
