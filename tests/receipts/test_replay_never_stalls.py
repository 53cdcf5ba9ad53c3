"""No receipt can stall the replays (issue 10): a row that fails is marked with why and
skipped, the others are replayed, and after `Receipt.MAX_ATTEMPTS` failures it is `given-up`
(no longer replayed by the schedule or the command, unless asked)."""

import json
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from receipts import services
from receipts.inbox import receipt_store
from receipts.models import Receipt, ReceiptState
from receipts.tasks import replay_receipts
from sending.models import Notification, NotificationStatus, NotificationType
from tests.receipts.conftest import (
    REFERENCE,
    SES_MESSAGE_ID,
    fixture_text,
    ses_notification,
    sns_envelope,
)
from tests.receipts.test_replay_receipts import replay, stored_receipt
from tests.stats.factories import notification_make

S = NotificationStatus


def stored(provider: str, body: str, content_type: str, *, state=ReceiptState.RECEIVED) -> Receipt:
    receipt = receipt_store(provider=provider, body=body, content_type=content_type)
    Receipt.objects.filter(id=receipt.id).update(
        received_at=timezone.now() - timedelta(minutes=5), state=state
    )
    return receipt


def mmg_with_offset(offset: str) -> str:
    body = json.loads(fixture_text("mmg", "delivered.json"))
    body["deliverytime"] = f"2016-04-05 16:01:07{offset}"
    return json.dumps(body)


def ses_with_surrogate() -> str:
    """smtpResponse "\\ud800": json.loads reads it, no database can store it."""
    ses = ses_notification("delivery.json")
    ses["delivery"]["smtpResponse"] = "250 ok \ud800"
    return json.dumps(sns_envelope(ses))


@pytest.fixture(autouse=True)
def unsigned_sns(settings):
    settings.SNS_VERIFY_SIGNATURES = False
    settings.SES_SNS_TOPIC_ARNS = []


def test_a_receipt_that_fails_is_marked_and_the_others_are_still_replayed(service):
    """The issue's case: an MMG time offset past ±15:59 (PostgreSQL refuses it) stalled every
    later receipt, and a lone surrogate failed on every database. Both now apply (the time
    left out, the surrogate replaced), and the replay goes on past them either way."""
    sms = notification_make(service=service, notification_id=REFERENCE, called=("mmg", "firetext"))
    email = notification_make(
        service=service,
        notification_type=NotificationType.EMAIL,
        provider_reference=SES_MESSAGE_ID,
        called="ses",
    )
    bad_time = stored("mmg", mmg_with_offset("+1600"), "application/json")
    bad_text = stored("ses", ses_with_surrogate(), "text/plain")
    good = stored_receipt("firetext", "delivered.txt", state=ReceiptState.FAILED)

    output = replay()

    assert "Replayed 3 receipt(s)" in output
    assert Receipt.objects.get(id=good.id).state == ReceiptState.PROCESSED
    assert Notification.objects.get(id=sms.id).status == S.DELIVERED
    bad_time.refresh_from_db()
    bad_text.refresh_from_db()
    assert (bad_time.state, bad_time.reported_at) == (ReceiptState.PROCESSED, None)
    assert bad_text.state == ReceiptState.PROCESSED
    assert Notification.objects.get(id=email.id).status == S.DELIVERED


def test_a_receipt_that_always_fails_is_given_up_after_max_attempts(service, monkeypatch):
    """A receipt the database refuses every time fails alone: the one beside it in the same
    batch is applied at the first run."""
    email = notification_make(
        service=service,
        notification_type=NotificationType.EMAIL,
        provider_reference=SES_MESSAGE_ID,
        called="ses",
    )
    sms = notification_make(service=service, notification_id=REFERENCE, called="firetext")
    apply = services.notifications_status_change

    def refusing(changes):
        if any(change.notification_id == email.id for change in changes):
            raise DatabaseError("value too long for type character varying(20)")
        return apply(changes)

    monkeypatch.setattr(services, "notifications_status_change", refusing)
    bad = stored("ses", ses_with_surrogate(), "text/plain", state=ReceiptState.FAILED)
    Receipt.objects.filter(id=bad.id).update(attempts=1)  # the request's own attempt
    good = stored_receipt("firetext", "delivered.txt", state=ReceiptState.FAILED)

    runs = [replay_receipts() for _ in range(Receipt.MAX_ATTEMPTS + 2)]

    assert Receipt.objects.get(id=good.id).state == ReceiptState.PROCESSED
    assert Notification.objects.get(id=sms.id).status == S.DELIVERED
    assert Notification.objects.get(id=email.id).status != S.DELIVERED
    bad.refresh_from_db()
    assert bad.state == ReceiptState.GIVEN_UP
    assert bad.attempts == Receipt.MAX_ATTEMPTS
    assert bad.outcome.startswith(f"given up after {Receipt.MAX_ATTEMPTS} attempts: ")
    assert runs[-2:] == [0, 0]  # no longer picked up by the schedule
    assert "0 receipt(s) to replay" in replay()
    assert "1 receipt(s) to replay" in replay("--given-up")
