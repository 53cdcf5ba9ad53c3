import logging
import time
from datetime import timedelta
from urllib.parse import parse_qs, parse_qsl

import boto3
import pytest
import requests
from django.utils import timezone

from sending import delivery, engine, tasks
from sending.clients.exceptions import EmailClientNonRetryableException
from sending.models import Notification, NotificationStatus, ProviderDetails, SendAttempt
from sending.services import notification_create
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


def test_an_email_goes_to_ses_its_message_id_is_kept_and_its_hand_over_counted(
    email, fake_clients, statsd, monkeypatch
):
    """Over HTTP to the fake SES; contract section 8: `tasks.deliver-email.success` and
    `.queued-for`, from acceptance to the drain taking it (the drain's clock, 2.5 s on)."""
    monkeypatch.setattr(delivery, "now", lambda: email.created_at + timedelta(seconds=2.5))

    tasks.deliver_email(str(email.id))

    [received] = fake_clients.requests("ses")
    assert (received["to"], received["status"]) == ("someone@example.com", 200)
    sent = reload(email)
    assert (sent.status, sent.sent_by) == ("sending", "ses")
    assert sent.provider_reference == received["provider_reference"]
    lines = statsd.received()
    assert "notify.tasks.deliver-email.success:1|c" in lines
    assert "notify.tasks.deliver-email.queued-for:2500.00000000|ms" in lines


def ses_refusing_an_address(service, settings):
    """An email to an address without a domain, and a moto SES whose sender is verified: its
    answer is a real `InvalidParameterValue` (HTTP 400), read by botocore's own parser."""
    ses = boto3.client("sesv2", region_name=settings.AWS_REGION)
    ses.create_email_identity(EmailIdentity=settings.SES_FROM_ADDRESS)
    return notification_create(
        service=service,
        notification_type="email",
        recipient="someone@",
        subject="Hello",
        content="Body",
    )


def test_an_address_ses_refuses_is_a_technical_failure_at_once(service, moto_ses, settings):
    refused = ses_refusing_an_address(service, settings)

    tasks.deliver_email(str(refused.id))
    tasks.deliver_email(str(refused.id))  # final now: nothing more is tried

    failed = reload(refused)
    assert failed.status == "technical-failure"
    assert failed.provider_status_reason == (
        "ses: ses error (400): InvalidParameterValue: Missing domain"
    )
    attempts = SendAttempt.objects.values_list("provider", "outcome", "status_code")
    assert list(attempts) == [("ses", "error", 400)]
    assert DailyStatistics.objects.get(service=service).emails_failed == 1


def test_an_address_ses_refuses_is_an_error_with_its_traceback(service, moto_ses, settings, caplog):
    """Contract section 5: a non-retryable SES error is logged at ERROR, with its traceback."""
    refused = ses_refusing_an_address(service, settings)

    tasks.deliver_email(str(refused.id))

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [(r.name, r.levelno, r.msg, r.status_code) for r in errors] == [
        ("sending.delivery", logging.ERROR, "send failed", 400)
    ]
    kind, error, traceback = errors[0].exc_info
    assert kind is EmailClientNonRetryableException and traceback is not None
    assert error.message == "InvalidParameterValue: Missing domain"
    assert "someone@" not in caplog.text


def ses_down(fake, settings, ses_answers):
    fake.control(provider="ses", down=True, mode="error")


def ses_timing_out(fake, settings, ses_answers):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.2
    fake.control(provider="ses", down=True, mode="timeout")


def ses_throttling(fake, settings, ses_answers):
    ses_answers("send-email-throttled.json")  # neither the fake nor moto throttles


@pytest.mark.parametrize(
    ("make_it_fail", "status_code"),
    [(ses_throttling, 429), (ses_down, 503), (ses_timing_out, 504)],
    ids=["throttling", "5xx", "timeout"],
)
def test_a_retryable_ses_error_is_a_warning_and_a_retry(
    email, fake_clients, settings, monkeypatch, ses_answers, caplog, make_it_fail, status_code
):
    """Contract section 5: SES's blips, real answers read by botocore, are retried and must
    not page anyone."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries would only sleep
    make_it_fail(fake_clients, settings, ses_answers)

    tasks.deliver_email(str(email.id))

    failures = [r for r in caplog.records if r.name == "sending.delivery" and "failed" in r.msg]
    assert [(r.levelno, r.msg, r.status_code) for r in failures] == [
        (logging.WARNING, "provider send failed", status_code)
    ]
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    waiting = reload(email)
    assert (waiting.status, waiting.retry_count) == ("created", 1)
    attempts = SendAttempt.objects.values_list("provider", "outcome", "status_code")
    assert list(attempts) == [("ses", "error", status_code)]


def test_ses_switched_off_in_the_admin_holds_emails(email, fake_clients):
    ProviderDetails.objects.filter(name="ses").update(active=False)
    tasks.deliver_email(str(email.id))
    assert fake_clients.requests("ses") == [] and reload(email).retry_count == 1


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
