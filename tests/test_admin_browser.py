"""The operator's console in a real browser: a real web server and a real (headless) Chromium.

Each step leaves a screenshot in `test-artifacts/admin-browser/` (or under $TEST_ARTIFACTS_DIR):
log in, the front page, a failed text found by the status filter, its timeline, a receipt
replayed, a provider's priority changed with a reason, the statistics chart.
Without Debian's chromium and chromium-driver the test is skipped, except under CI=true, where
it fails (`.ci/run` installs them).
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from receipts.models import Receipt, ReceiptState
from sending.models import (
    Notification,
    NotificationStatus,
    NotificationType,
    ProviderDetails,
    SendAttempt,
)
from tests.conftest import REPO_ROOT, free_port, subprocess_env
from tests.stats.factories import notification_make

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO_ROOT / "test-artifacts")
WAIT = 60  # seconds: generous, for a loaded two-core machine; every wait polls a condition

pytestmark = [
    pytest.mark.e2e,
    # The web server is another process: it must see committed rows, and the seeded providers.
    pytest.mark.django_db(transaction=True),
]


def _missing_browser() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"needs {path} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (requirements-dev.txt)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _browser_present():
    missing = _missing_browser()
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the browser test can't run: {missing}")
    if missing:
        pytest.skip(missing)


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
        deadline = time.monotonic() + WAIT
        while server.poll() is None and time.monotonic() < deadline:
            if _answers(f"http://127.0.0.1:{port}/livez"):
                yield f"http://127.0.0.1:{port}"
                server.terminate()
                server.wait(timeout=WAIT)
                log.close()
                return
            time.sleep(0.1)
        server.kill()
        server.wait(timeout=WAIT)
        log.close()
    pytest.fail(f"the web server did not start:\n{(tmp_path / 'web.log').read_text()}")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


class Operator:
    """The steps an operator takes, each waited for by its condition and photographed."""

    def __init__(self, driver, base_url: str, artifacts: Path):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        self.driver, self.base_url, self.artifacts = driver, base_url, artifacts
        self.by, self.ec = By, expected_conditions
        self.wait = WebDriverWait(driver, WAIT, poll_frequency=0.1)
        self.step = 0

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base_url}{path}")
        self.wait.until(self.ec.presence_of_element_located((self.by.ID, "content")))

    def find(self, css: str):
        return self.wait.until(self.ec.presence_of_element_located((self.by.CSS_SELECTOR, css)))

    def click_link(self, text: str) -> None:
        self.wait.until(self.ec.element_to_be_clickable((self.by.LINK_TEXT, text))).click()

    def text(self, css: str = "#content") -> str:
        return self.find(css).text

    def until_url(self, fragment: str) -> None:
        self.wait.until(self.ec.url_contains(fragment))

    def until_text(self, css: str, text: str) -> None:
        self.wait.until(self.ec.text_to_be_present_in_element((self.by.CSS_SELECTOR, css), text))

    def screenshot(self, name: str, *, show: str | None = None) -> Path:
        """The viewport, scrolled to `show` (a CSS selector) when given."""
        if show:
            self.driver.execute_script("arguments[0].scrollIntoView()", self.find(show))
        self.step += 1
        path = self.artifacts / f"{self.step:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path


@pytest.fixture
def operator_steps(web_server, browser):
    artifacts = ARTIFACTS / "admin-browser"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    get_user_model().objects.create_superuser(USERNAME, "ops@example.com", PASSWORD)
    return Operator(browser, web_server, artifacts)


def _failed_text(service) -> Notification:
    text = notification_make(service=service, status=NotificationStatus.TECHNICAL_FAILURE)
    start = text.created_at + timedelta(seconds=1)
    for offset, provider, outcome, code, error in (
        (0, "mmg", "error", 503, "503 Service unavailable"),
        (1, "firetext", "error", 504, "Gateway timeout"),
    ):
        SendAttempt.objects.create(
            notification=text,
            provider=provider,
            started_at=start + timedelta(seconds=offset),
            duration_ms=900,
            outcome=outcome,
            status_code=code,
            error=error,
        )
    Receipt.objects.create(
        provider="firetext",
        body=f"mobile=447700900123&status=1&code=401&reference={text.id}",
        content_type="application/x-www-form-urlencoded",
        received_at=start + timedelta(seconds=5),
        state=ReceiptState.PROCESSED,
        reference=str(text.id),
        outcome="unchanged: already technical-failure",
    )
    return text


def test_operator_console(operator_steps, service):
    op = operator_steps
    failed = _failed_text(service)
    delivered = notification_make(service=service, status=NotificationStatus.DELIVERED)
    notification_make(service=service, notification_type=NotificationType.EMAIL, status="delivered")
    waiting = notification_make(service=service, status=NotificationStatus.SENDING, called="mmg")
    unapplied = Receipt.objects.create(
        provider="mmg",
        body=f'{{"reference": "{waiting.id}", "CID": "{waiting.id}", "MSISDN": "447700900123",'
        ' "status": "3", "substatus": "2"}',
        content_type="application/json",
        state=ReceiptState.FAILED,
        received_at=timezone.now() - timedelta(minutes=3),
        outcome="OperationalError('database is locked')",
    )

    # Log in.
    op.open("/admin/login/?next=/admin/")
    op.find("#id_username").send_keys(USERNAME)
    op.find("#id_password").send_keys(PASSWORD)
    op.screenshot("login")
    op.find("input[type=submit]").click()

    # The front page: today's counts, what waits, each provider.
    op.find("#dashboard")
    counts = op.text("#status-counts")
    assert "technical-failure\n1\n0" in counts  # texts, then emails
    assert "delivered\n1\n1" in counts
    assert "Receipts failed 1" in op.text("#backlog")
    providers = op.text("#providers")
    assert "Firetext" in providers
    assert "MMG" in providers
    assert "migration: initial provider set-up" in providers
    op.screenshot("front-page")

    # A failed text, found by the status filter.
    op.open("/admin/sending/notification/")
    op.click_link("Technical Failure")
    op.until_url("status__exact=technical-failure")
    listed = op.text("#result_list")
    assert str(failed.id) in listed
    assert str(delivered.id) not in listed
    assert "4477******23" in listed
    assert "447700900123" not in listed
    op.screenshot("failed-text-by-status")

    # Its timeline: created, both attempts, the receipt with its masked body.
    op.click_link(str(failed.id))
    timeline = op.text("#timeline")
    assert timeline.index("accepted") < timeline.index("mmg: error")
    assert timeline.index("mmg: error") < timeline.index("firetext: error")
    assert timeline.index("firetext: error") < timeline.index("Firetext receipt")
    assert "status code: 503" in timeline
    assert "code: 401" in timeline
    assert "mobile=4477******23" in timeline
    assert "447700900123" not in op.text()
    op.screenshot("timeline", show="#timeline")

    # Replay the receipt that failed: the text it names is delivered.
    op.open("/admin/callbacks/receipt/?outcome=failed")
    op.find(f"input.action-select[value='{unapplied.pk}']").click()
    from selenium.webdriver.support.select import Select

    Select(op.find("select[name=action]")).select_by_value("replay")
    op.find("button[name=index]").click()
    op.find("#id_reason").send_keys("the database was restarted")
    op.find("#apply-action").click()
    op.until_text(".messagelist", "Replayed 1 receipt(s): 1 processed.")
    op.screenshot("receipt-replayed")
    waiting.refresh_from_db()
    assert waiting.status == NotificationStatus.DELIVERED

    # Move Firetext's priority: a reason is asked for, and lands in the history.
    firetext = ProviderDetails.objects.get(name="firetext")
    op.open(f"/admin/sending/providerdetails/{firetext.pk}/change/")
    priority = op.find("#id_priority")
    priority.clear()
    priority.send_keys("70")
    op.find("input[name=_continue]").click()
    op.until_text(".errorlist", "Say why")
    op.find("#id_priority").clear()
    op.find("#id_priority").send_keys("70")
    op.find("#id_reason").send_keys("MMG slow tonight")
    op.find("input[name=_continue]").click()
    op.until_text(".messagelist", "was changed successfully")
    history = op.text("#history")
    assert f"admin:{USERNAME}" in history
    assert "MMG slow tonight" in history
    op.screenshot("provider-priority-history", show="#history")
    firetext.refresh_from_db()
    assert firetext.priority == 70

    # The statistics chart, from the front page.
    op.open("/admin/")
    op.click_link("Statistics: the last 24 hours and 30 days")
    chart = op.find("#chart-1 svg")
    assert chart.size["width"] > 300
    assert "texts delivered" in op.text("#chart-1")
    op.screenshot("statistics-chart")
    assert len(list(op.artifacts.glob("*.png"))) == 7
