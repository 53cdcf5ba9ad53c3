"""The on-call hour in a real browser (Chromium), with a status callback configured as `make run`
sets one up: a provider outage seen and acted on, no worker running shown, a text waiting for
its planned retry retried now, a search by recipient, and each mend in the history and the
timeline. A screenshot per step in `test-artifacts/on-call/`."""

import shutil
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from sending.models import Notification, NotificationStatus, ProviderDetails, SendAttempt
from tests.stats.factories import notification_make
from tests.test_admin_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    PASSWORD,
    USERNAME,
    Operator,
    _browser_present,
    browser,
    web_server,
)
from webhooks.models import ServiceCallback
from webhooks.services import service_callback_set

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def op(web_server, browser):  # noqa: F811
    artifacts = ARTIFACTS / "on-call"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    get_user_model().objects.create_superuser(USERNAME, "ops@example.com", PASSWORD)
    operator = Operator(browser, web_server, artifacts)
    operator.open("/admin/login/?next=/admin/")
    operator.find("#id_username").send_keys(USERNAME)
    operator.find("#id_password").send_keys(PASSWORD)
    operator.find("input[type=submit]").click()
    operator.find("#dashboard")
    return operator


def _choose(op, action: str, ids, reason: str) -> None:
    from selenium.webdriver.support.select import Select

    for notification_id in ids:
        op.find(f"input.action-select[value='{notification_id}']").click()
    Select(op.find("select[name=action]")).select_by_value(action)
    op.find("button[name=index]").click()
    op.find("#id_reason").send_keys(reason)
    op.find("#apply-action").click()


def test_the_on_call_hour(op, service, settings):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    service_callback_set(
        service=service, url="http://127.0.0.1:9/callback", bearer_token="a-bearer-token-1"
    )
    assert ServiceCallback.objects.filter(service=service).exists()
    outage = notification_make(service=service, status=NotificationStatus.CREATED)
    now = timezone.now()
    for outcome in ["error"] * 12 + ["success"]:
        SendAttempt.objects.create(
            notification=outage, provider="firetext", started_at=now, outcome=outcome
        )
    retrying = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=retrying.id).update(
        next_attempt_at=now + timedelta(minutes=4), retry_count=1
    )
    stuck = notification_make(service=service, status=NotificationStatus.SENDING)

    # No qcluster runs here: the front page says so first, in red.
    op.open("/admin/")
    assert "No qcluster is running" in op.text("#workers")
    assert "no worker is running" in op.text("#drains")
    assert "Retries planned 1 next in" in op.text("#drains")
    op.screenshot("no-worker-running", show="#workers")

    # Firetext is failing, named, in red; the operator takes it out, saying why.
    firetext = op.text("#provider-firetext")
    assert "failing" in firetext
    assert "Firetext: 12 errors of 13 calls in the last 5 minutes" in firetext
    assert "console-alarm" in op.find("#provider-firetext").get_attribute("class")
    op.screenshot("firetext-failing", show="#providers")
    provider = ProviderDetails.objects.get(name="firetext")
    op.open(f"/admin/sending/providerdetails/{provider.pk}/change/")
    op.find("#id_active").click()
    op.find("#id_reason").send_keys("Firetext status page: SMSC outage")
    op.find("input[name=_continue]").click()
    op.until_text(".messagelist", "was changed successfully")
    op.open("/admin/")
    firetext = op.text("#provider-firetext")
    assert "taken out" in firetext
    assert "Firetext is inactive: Firetext status page: SMSC outage" in firetext
    op.screenshot("firetext-taken-out", show="#providers")

    # The text waiting for its planned retry: found by the filter, retried now.
    op.click_link("Retries planned")
    op.until_url("waiting=retry")
    assert str(retrying.id) in op.text("#result_list")
    assert str(outage.id) not in op.text("#result_list")
    _choose(op, "retry_now", [retrying.id], "Firetext is out; MMG takes it now")
    op.until_text(".messagelist", "Queued 1 notification(s) now.")
    op.screenshot("retried-now")
    retrying.refresh_from_db()
    assert retrying.queued_at is not None and retrying.next_attempt_at <= timezone.now()

    # A stuck text marked failed (with a callback configured: its callback is queued).
    op.open("/admin/sending/notification/?status__exact=sending")
    _choose(op, "mark_technical_failure", [stuck.id], "lost by the provider")
    op.until_text(".messagelist", "Marked 1 notification(s) technical-failure.")
    stuck.refresh_from_db()
    assert stuck.status == NotificationStatus.TECHNICAL_FAILURE
    assert stuck.callback_events.count() == 1

    # Search by recipient, typed as a person would: found, and still shown masked.
    op.open("/admin/sending/notification/")
    search = op.find("#searchbar")
    search.send_keys("07700 900123\n")
    op.until_url("q=07700")
    listed = op.text("#result_list")
    assert str(retrying.id) in listed and str(stuck.id) in listed
    assert "4477******23" in listed and "447700900123" not in listed
    op.screenshot("search-by-recipient")

    # Each mend is in the notification's timeline and its history, with who and why.
    op.open(f"/admin/sending/notification/{stuck.id}/change/")
    timeline = op.text("#timeline")
    assert "marked technical-failure: lost by the provider" in timeline
    assert USERNAME in timeline
    assert "callback queued" in timeline
    op.screenshot("timeline-with-mend", show="#timeline")
    op.open(f"/admin/sending/notification/{retrying.id}/history/")
    history = op.text("#content")
    assert "retry now: Firetext is out; MMG takes it now" in history
    op.screenshot("history-of-a-mend")
    assert len(list(op.artifacts.glob("*.png"))) == 7
