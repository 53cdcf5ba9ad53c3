"""Status callbacks sent to a real local HTTP receiver: payload, headers, signature, retries."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sending.models import NotificationStatus
from sending.status import notification_update_status
from tests.webhooks.conftest import BEARER_TOKEN, Answer, send, text
from webhooks import delivery
from webhooks.models import CallbackAttempt, CallbackEvent, CallbackState
from webhooks.services import service_callback_end_roll, service_callback_roll_secret

pytestmark = pytest.mark.django_db


def delivered(notification, status=NotificationStatus.DELIVERED):
    return notification_update_status(notification_id=notification.id, status=status)


def only_event() -> CallbackEvent:
    (event,) = CallbackEvent.objects.all()
    return event


def test_a_delivery_is_posted_with_the_contract_payload_and_headers(service, callback, receiver):
    notification = text(service)
    delivered(notification)
    event = only_event()

    assert send(event) == CallbackState.DELIVERED

    (request,) = receiver.received
    assert request.path == "/callbacks/notify"
    assert request.headers["authorization"] == f"Bearer {BEARER_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == str(event.id)
    notification.refresh_from_db()
    body = json.loads(request.body)
    assert body == {
        "id": str(notification.id),
        "reference": "client-ref-1",
        "to": "447700900123",
        "status": "delivered",
        "created_at": notification.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "completed_at": notification.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "sent_at": None,
        "notification_type": "sms",
        "fragment_count": 1,
    }
    # The library's own verifier accepts what we sent, with the secret the service was given.
    verified = Webhook(callback.signing_secret).verify(request.body, request.headers)
    assert verified == body
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)
    event.refresh_from_db()
    assert (event.state, event.attempts) == (CallbackState.DELIVERED, 1)
    (attempt,) = CallbackAttempt.objects.filter(notification=notification)
    assert (attempt.status_code, attempt.outcome, attempt.error) == (200, "delivered", "")


def test_the_timestamp_is_the_attempts_own(service, callback, receiver):
    delivered(text(service))
    before = int(datetime.now(UTC).timestamp())
    send(only_event())
    stamp = int(receiver.received[0].headers["webhook-timestamp"])
    assert before <= stamp <= int(datetime.now(UTC).timestamp())


ELSEWHERE = {"Location": "http://127.0.0.1:1/"}


@pytest.mark.parametrize(
    "answer",
    [
        Answer(500),
        Answer(503),
        Answer(429),
        Answer(408),
        Answer(hang=True),
        Answer(301, headers=ELSEWHERE),
        Answer(302, headers=ELSEWHERE),
        Answer(307, headers=ELSEWHERE),
        Answer(308, headers=ELSEWHERE),
    ],
    ids=["500", "503", "429", "408", "timeout", "301", "302", "307", "308"],
)
def test_a_retryable_failure_is_retried_with_the_same_webhook_id(
    service, callback, receiver, clock, answer
):
    delivered(text(service))
    event = only_event()
    receiver.answer(answer)

    assert send(event) == CallbackState.RETRYING
    event.refresh_from_db()
    assert event.next_attempt_at == clock.current + timedelta(seconds=10)
    assert send(event) is None  # not due yet: nothing is sent
    assert len(receiver.received) == 1

    clock.advance(seconds=10)
    assert send(event) == CallbackState.DELIVERED
    first, second = receiver.received  # a redirect is not followed: both came here
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(event.id)
    assert first.body == second.body
    outcomes = list(event.attempt_rows.values_list("outcome", flat=True))
    assert outcomes == ["retry", "delivered"]
    if answer.hang:
        assert event.attempt_rows.first().error == "timeout after 0.5 s"
    else:
        assert event.attempt_rows.first().status_code == answer.status


def test_a_refused_connection_is_retried(service, callback, receiver, clock):
    delivered(text(service))
    receiver.stop()
    event = only_event()
    assert send(event) == CallbackState.RETRYING
    assert event.attempt_rows.get().error.startswith("connection error")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_answers_are_not_retried(service, callback, receiver, status):
    delivered(text(service))
    receiver.answer(Answer(status))
    event = only_event()

    assert send(event) == CallbackState.GIVEN_UP
    event.refresh_from_db()
    assert (event.state, event.attempts) == (CallbackState.GIVEN_UP, 1)
    assert send(event) is None
    assert len(receiver.received) == 1


def test_backoff_doubles_to_an_hour_and_gives_up_after_the_last_attempt(
    service, callback, receiver, clock, settings, statsd
):
    settings.SERVICE_CALLBACK_MAX_ATTEMPTS = 14
    receiver.default = Answer(503)
    delivered(text(service))
    event = only_event()
    waits = []
    for _ in range(13):
        assert send(event) == CallbackState.RETRYING
        event.refresh_from_db()
        waits.append((event.next_attempt_at - clock.current).total_seconds())
        clock.current = event.next_attempt_at
    assert waits == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600, 3600]

    assert send(event) == CallbackState.GIVEN_UP
    event.refresh_from_db()
    assert (event.state, event.attempts) == (CallbackState.GIVEN_UP, 14)
    clock.advance(hours=2)
    assert send(event) is None
    assert len(receiver.received) == 14
    lines = statsd.received()
    assert lines.count("notify.service-callbacks.error:1|c") == 14
    assert lines.count("notify.service-callbacks.retry:1|c") == 13
    assert lines.count("notify.service-callbacks.given-up:1|c") == 1
    assert sum(line.startswith("notify.service-callbacks.request-time:") for line in lines) == 14


def test_the_default_schedule_gives_25_attempts_over_about_16_hours():
    waits = [delivery.retry_delay(n) for n in range(1, 25)]
    assert sum(waits, timedelta()) == timedelta(seconds=5110 + 15 * 3600)


def test_success_is_counted(service, callback, receiver, statsd):
    delivered(text(service))
    send(only_event())
    lines = statsd.received()
    assert "notify.service-callbacks.success:1|c" in lines


def test_during_a_roll_both_secrets_sign(service, callback, receiver):
    new_secret = service_callback_roll_secret(callback=callback.callback)
    delivered(text(service))
    send(only_event())
    request = receiver.received[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (callback.signing_secret, new_secret):
        Webhook(secret).verify(request.body, request.headers)

    service_callback_end_roll(callback=callback.callback)
    delivered(text(service))
    send(CallbackEvent.objects.exclude(state=CallbackState.DELIVERED).get())
    request = receiver.received[1]
    Webhook(new_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(callback.signing_secret).verify(request.body, request.headers)


def test_a_removed_callback_gives_the_event_up_without_sending(service, callback, receiver):
    delivered(text(service))
    callback.callback.delete()
    event = only_event()
    assert send(event) is None
    event.refresh_from_db()
    assert event.state == CallbackState.GIVEN_UP
    assert event.attempt_rows.get().error == "no callback configured"
    assert receiver.received == []
