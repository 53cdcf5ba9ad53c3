import logging
import time
from datetime import timedelta
from urllib.parse import parse_qs, parse_qsl

import pytest
import requests
from django.utils import timezone

from sending import delivery, engine, tasks
from sending.clients.exceptions import (
    EmailClientException,
    EmailClientNonRetryableException,
    EmailClientThrottlingException,
)
from sending.models import Notification, NotificationStatus, ProviderDetails, SendAttempt
from stats.models import DailyStatistics
from tests.pipeline.conftest import FIRETEXT_OK, FIRETEXT_URL, MMG_URL, prefer


def reload(notification) -> Notification:
    return Notification.objects.get(id=notification.id)


def test_a_text_goes_to_the_chosen_provider_and_becomes_sending(sms, wire):
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)

    tasks.deliver_sms(str(sms.id))

    sent = reload(sms)
    assert (sent.status, sent.sent_by) == ("sending", "firetext")
    assert sent.sent_at is not None and sent.lease_until is None
    fields = parse_qs(wire.calls[0].request.body)
    assert fields["reference"] == [str(sms.id)]
    assert fields["to"] == ["447700900123"]
    assert list(SendAttempt.objects.values_list("provider", "outcome")) == [("firetext", "success")]


def test_mmg_reference_is_kept_as_the_provider_reference(sms, wire):
    prefer("mmg")
    wire.post(MMG_URL, json={"Reference": 12345678})
    tasks.deliver_sms(str(sms.id))
    assert reload(sms).provider_reference == "12345678"


def test_a_notification_is_sent_once_however_often_its_task_runs(sms, wire):
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)

    for _ in range(3):
        tasks.deliver_sms(str(sms.id))

    assert len(wire.calls) == 1


def test_a_notification_leased_by_another_worker_is_left_alone(sms, wire):
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    Notification.objects.filter(id=sms.id).update(
        lease_until=timezone.now() + timedelta(seconds=30)
    )

    tasks.deliver_sms(str(sms.id))
    assert len(wire.calls) == 0

    # The worker died: once its lease runs out, another worker may send.
    Notification.objects.filter(id=sms.id).update(lease_until=timezone.now() - timedelta(seconds=1))
    tasks.deliver_sms(str(sms.id))
    assert len(wire.calls) == 1
    assert reload(sms).status == "sending"


def test_a_provider_error_fails_over_at_once_and_is_only_a_warning(sms, wire, caplog):
    prefer("firetext")
    wire.post(FIRETEXT_URL, status=503, body="<html>Service Unavailable</html>")
    wire.post(MMG_URL, json={"Reference": 1})

    with caplog.at_level(logging.INFO):
        tasks.deliver_sms(str(sms.id))

    assert (reload(sms).status, reload(sms).sent_by) == ("sending", "mmg")
    failures = [r for r in caplog.records if r.getMessage() == "provider send failed"]
    assert [(r.levelname, r.provider, r.status_code) for r in failures] == [
        ("WARNING", "firetext", 503)
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "7700900123" not in caplog.text
    attempts = list(SendAttempt.objects.values_list("provider", "outcome", "status_code"))
    assert attempts == [("firetext", "error", 503), ("mmg", "success", None)]


def test_a_timeout_says_which_provider_and_how_long(sms, wire, caplog, settings):
    prefer("firetext")

    def slow_then_timeout(request):
        time.sleep(0.05)
        raise requests.exceptions.ReadTimeout()

    wire.add_callback("POST", FIRETEXT_URL, callback=slow_then_timeout)
    wire.post(MMG_URL, json={"Reference": 1})

    tasks.deliver_sms(str(sms.id))

    (record,) = [r for r in caplog.records if r.getMessage() == "provider send failed"]
    assert (record.provider, record.status_code, record.timeout_s) == ("firetext", 504, 10.0)
    assert record.duration_ms >= 50
    timed_out = SendAttempt.objects.get(provider="firetext")
    assert (timed_out.outcome, timed_out.status_code) == ("error", 504)
    assert timed_out.duration_ms == record.duration_ms


def test_a_bug_is_logged_as_an_error_with_its_traceback_and_retried(sms, monkeypatch, caplog):
    prefer("firetext")

    def broken(self, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(type(delivery.sms_client("firetext")), "send_sms", broken)
    monkeypatch.setattr(type(delivery.sms_client("mmg")), "send_sms", broken)

    tasks.deliver_sms(str(sms.id))

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info and r.exc_info[0] is KeyError for r in errors)
    assert reload(sms).retry_count == 1


def test_when_both_providers_fail_a_retry_is_planned(sms, wire, settings, monkeypatch):
    settings.SMS_RETRY_DELAY_SECONDS = 300
    wire.post(FIRETEXT_URL, status=500)
    wire.post(MMG_URL, status=500)
    before = timezone.now()

    tasks.deliver_sms(str(sms.id))

    waiting = reload(sms)
    assert waiting.status == "created" and waiting.retry_count == 1 and waiting.lease_until is None
    assert (
        before + timedelta(seconds=299)
        < waiting.next_attempt_at
        < timezone.now() + timedelta(seconds=301)
    )
    assert len(wire.calls) == 2

    tasks.deliver_sms(str(sms.id))  # too early: nothing is sent
    assert len(wire.calls) == 2

    monkeypatch.setattr(engine, "now", lambda: timezone.now() + timedelta(seconds=301))
    tasks.deliver_sms(str(sms.id))
    assert len(wire.calls) == 4
    assert reload(sms).retry_count == 2


def test_after_the_last_retry_it_is_a_technical_failure_counted_once(sms, wire, settings, service):
    settings.SMS_RETRY_DELAY_SECONDS = 0
    settings.SMS_MAX_RETRIES = 2
    wire.post(FIRETEXT_URL, status=500)
    wire.post(MMG_URL, status=500)

    for _ in range(3):
        tasks.deliver_sms(str(sms.id))
    tasks.deliver_sms(str(sms.id))  # final now: nothing more is sent

    failed = reload(sms)
    assert failed.status == "technical-failure"
    assert "gave up after 2 retries" in failed.provider_status_reason
    assert len(wire.calls) == 6
    row = DailyStatistics.objects.get(service=service)
    assert (row.sms_requested, row.sms_failed) == (1, 1)


def test_no_active_provider_waits_for_a_retry(sms, wire):
    ProviderDetails.objects.filter(notification_type="sms").update(active=False)
    tasks.deliver_sms(str(sms.id))
    assert reload(sms).retry_count == 1
    assert len(wire.calls) == 0


def test_international_texts_use_the_international_key_of_a_capable_provider(
    service, wire, settings
):
    from sending.services import notification_create

    settings.FIRETEXT_INTERNATIONAL_API_KEY = "firetext-international-key"
    ProviderDetails.objects.filter(name="mmg").update(supports_international=False)
    text = notification_create(
        service=service,
        notification_type="sms",
        recipient="12025550143",
        international=True,
        content="hi",
    )
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    tasks.deliver_sms(str(text.id))
    assert reload(text).sent_by == "firetext"
    (call,) = wire.calls
    sent = dict(parse_qsl(call.request.body))
    assert (sent["apiKey"], sent["to"]) == ("firetext-international-key", "12025550143")


def test_a_receipt_that_beat_the_worker_keeps_its_status(sms, wire, monkeypatch):
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    record = delivery.sends_record

    def receipt_first(finished):
        # The receipt lands after the provider answered, before the drain records the answer.
        Notification.objects.filter(id=sms.id).update(status=NotificationStatus.DELIVERED)
        return record(finished)

    monkeypatch.setattr(delivery, "sends_record", receipt_first)
    tasks.deliver_sms(str(sms.id))

    final = reload(sms)
    assert (final.status, final.sent_by) == ("delivered", "firetext")
    assert final.sent_at is not None


class FakeSes:
    name = "ses"

    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = 0

    def send_email(self, **kwargs):
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def use_ses(monkeypatch, outcome) -> FakeSes:
    fake = FakeSes(outcome)
    monkeypatch.setattr(delivery, "email_client", lambda: fake)
    return fake


def test_an_email_is_sent_and_its_message_id_kept(email, monkeypatch):
    use_ses(monkeypatch, "0102-message-id")
    tasks.deliver_email(str(email.id))
    sent = reload(email)
    assert (sent.status, sent.sent_by, sent.provider_reference) == (
        "sending",
        "ses",
        "0102-message-id",
    )


def test_ses_throttling_is_retried(email, monkeypatch, settings):
    settings.EMAIL_RETRY_DELAY_SECONDS = 60
    use_ses(monkeypatch, EmailClientThrottlingException("ses", 429, "TooManyRequestsException"))
    tasks.deliver_email(str(email.id))
    waiting = reload(email)
    assert (waiting.status, waiting.retry_count) == ("created", 1)


def test_a_non_retryable_ses_error_is_a_technical_failure_at_once(email, monkeypatch, service):
    fake = use_ses(
        monkeypatch, EmailClientNonRetryableException("ses", 400, "InvalidParameterValue")
    )
    tasks.deliver_email(str(email.id))
    tasks.deliver_email(str(email.id))
    assert reload(email).status == "technical-failure"
    assert fake.calls == 1
    assert DailyStatistics.objects.get(service=service).emails_failed == 1


@pytest.mark.parametrize(
    "error",
    [
        EmailClientThrottlingException("ses", 429, "TooManyRequestsException"),
        EmailClientException("ses", 503, "ServiceUnavailable"),
        EmailClientException("ses", 504, "Gateway timeout"),
    ],
    ids=["throttling", "5xx", "timeout"],
)
def test_a_retryable_ses_error_is_a_warning_not_an_error(email, monkeypatch, caplog, error):
    """Contract section 5: SES's blips are retried and must not page anyone."""
    use_ses(monkeypatch, error)
    tasks.deliver_email(str(email.id))

    failures = [r for r in caplog.records if r.name == "sending.delivery" and "failed" in r.msg]
    assert [(r.levelno, r.msg, r.status_code) for r in failures] == [
        (logging.WARNING, "provider send failed", error.status_code)
    ]
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    assert reload(email).retry_count == 1


def test_a_non_retryable_ses_error_is_an_error_with_its_traceback(email, monkeypatch, caplog):
    use_ses(monkeypatch, EmailClientNonRetryableException("ses", 400, "InvalidParameterValue"))
    tasks.deliver_email(str(email.id))

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.msg for r in errors] == ["send failed"]
    assert errors[0].exc_info[0] is EmailClientNonRetryableException


def test_ses_switched_off_in_the_admin_holds_emails(email, monkeypatch):
    fake = use_ses(monkeypatch, "id")
    ProviderDetails.objects.filter(name="ses").update(active=False)
    tasks.deliver_email(str(email.id))
    assert fake.calls == 0 and reload(email).retry_count == 1


def test_metrics_count_the_hand_over_and_time_the_queue(sms, wire, statsd):
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    tasks.deliver_sms(str(sms.id))

    names = {line.split(":")[0]: line.rsplit("|", 1)[1] for line in statsd.received()}
    assert names["notify.tasks.deliver-sms.success"] == "c"
    assert names["notify.tasks.deliver-sms.queued-for"] == "ms"


@pytest.mark.parametrize("task", ["deliver_sms", "deliver_email"])
def test_an_unknown_id_does_nothing(db, task, wire):
    getattr(tasks, task)("0b8f0c56-4a36-4c1c-9d0f-1a7a0e3a1d11")
    assert len(wire.calls) == 0
