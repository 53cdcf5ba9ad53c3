"""The Django admin as an operator uses it: a real web server and a real (headless) Chromium.

Skipped when Debian's chromium and chromium-driver are not installed (`.ci/run` installs them).
Set ADMIN_SCREENSHOT=/some/file.png to keep a screenshot of the notifications list.
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from sending.models import Notification, NotificationStatus, NotificationType, ProviderDetails
from tests.conftest import REPO_ROOT, free_port, subprocess_env

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.e2e,
    # The web server is another process: it must see committed rows, and the seeded providers.
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

USERNAME, PASSWORD = "operator", "a-long-admin-password-1"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def web_server(tmp_path):
    """`manage.py runserver` (it serves the admin's static files) on this run's test database."""
    for _attempt in range(3):  # the port picked may be taken before the server binds it
        port = free_port()
        log = (tmp_path / "web.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=REPO_ROOT,
            env=subprocess_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while server.poll() is None and time.monotonic() < deadline:
            if _answers(f"http://127.0.0.1:{port}/livez"):
                yield f"http://127.0.0.1:{port}"
                server.terminate()
                server.wait(timeout=10)
                log.close()
                return
            time.sleep(0.1)
        server.kill()
        server.wait(timeout=10)
        log.close()
    pytest.fail(f"the web server did not start:\n{(tmp_path / 'web.log').read_text()}")


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _notification(service, content: str, **changes) -> Notification:
    notification = Notification.objects.create(
        service=service,
        notification_type=NotificationType.SMS,
        recipient="447700900123",
        content=content,
    )
    Notification.objects.filter(pk=notification.pk).update(**changes)
    return notification


def _result_ids(driver) -> set[str]:
    return {cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#result_list tbody th a")}


def _open(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 10).until(
        expected_conditions.presence_of_element_located((By.ID, "content"))
    )


def test_operator_finds_notifications_and_moves_provider_priority(
    web_server, browser, service, tmp_path
):
    get_user_model().objects.create_superuser(USERNAME, "ops@example.com", PASSWORD)
    created = _notification(service, "Your code is 111111")
    delivered = _notification(
        service, "Your code is 222222", status=NotificationStatus.DELIVERED, sent_by="mmg"
    )

    # Log in.
    _open(browser, f"{web_server}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys(USERNAME)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(f"{web_server}/admin/"))
    assert "Site administration" in browser.title

    # The notifications list shows both; the status filter narrows it to the delivered one.
    _open(browser, f"{web_server}/admin/sending/notification/")
    assert _result_ids(browser) == {str(created.id), str(delivered.id)}
    screenshot = os.environ.get("ADMIN_SCREENSHOT") or str(tmp_path / "admin.png")
    assert browser.save_screenshot(screenshot)
    browser.find_element(By.LINK_TEXT, "Delivered").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("status__exact=delivered"))
    assert _result_ids(browser) == {str(delivered.id)}

    # Search by id, then open the notification.
    _open(browser, f"{web_server}/admin/sending/notification/")
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys(str(created.id))
    search.submit()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("q="))
    assert _result_ids(browser) == {str(created.id)}
    browser.find_element(By.LINK_TEXT, str(created.id)).click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains(f"{created.id}/change/"))
    page = browser.find_element(By.ID, "content").text
    assert "Your code is 111111" in page
    assert "447700900123" in page

    # The providers, each with its priority history.
    _open(browser, f"{web_server}/admin/sending/providerdetails/")
    listed = browser.find_element(By.ID, "result_list").text
    assert "Firetext" in listed
    assert "MMG" in listed
    firetext = ProviderDetails.objects.get(name="firetext")
    _open(browser, f"{web_server}/admin/sending/providerdetails/{firetext.pk}/change/")
    history = browser.find_element(By.CSS_SELECTOR, ".inline-group").text
    assert "migration" in history
    assert "initial provider set-up" in history

    # Moving Firetext's priority writes a history row naming the operator.
    priority = browser.find_element(By.ID, "id_priority")
    priority.clear()
    priority.send_keys("70")
    browser.find_element(By.NAME, "_continue").click()
    WebDriverWait(browser, 10).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
    )
    history = browser.find_element(By.CSS_SELECTOR, ".inline-group").text
    assert f"admin:{USERNAME}" in history
    firetext.refresh_from_db()
    assert firetext.priority == 70
    latest = firetext.history.order_by("-created_at", "-id").first()
    assert (latest.priority, latest.changed_by) == (70, f"admin:{USERNAME}")
