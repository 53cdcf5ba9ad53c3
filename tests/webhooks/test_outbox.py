"""The outbox: one event per change to a final status, written with the change, queued once it
commits; through the receipt endpoints (on PostgreSQL the one-statement receipt path), the
send task's failure, the time-out sweep and complaints."""

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.utils import timezone
from django_q.signing import SignedPackage

from receipts.models import Complaint
from sending import status as status_module
from sending import sweeps
from sending.delivery import notification_retry_later
from sending.models import NotificationStatus, SendAttempt, Service
from tests.receipts.conftest import FIRETEXT, MMG, post, ses_notification, sns_envelope
from tests.receipts.test_ses_receipts import email, post_sns
from tests.webhooks.conftest import callbacks_broker, text
from webhooks.models import CallbackEvent, CallbackKind
from webhooks.outbox import callback_drain_slot_free, payload_time

pytestmark = pytest.mark.django_db


def queued_callbacks() -> list[str]:
    """The services whose drain was queued, in order (and empties the queue, giving each
    drain's slot back as the drain would once done)."""
    broker = callbacks_broker()
    services = []
    while messages := broker.dequeue():
        for task_id, payload in messages:
            task = SignedPackage.loads(payload)
            if task["func"] == "webhooks.tasks.drain_callbacks":
                service_id, slot = task["args"]
                services.append(service_id)
                callback_drain_slot_free(service_id=service_id, slot=slot)
            broker.acknowledge(task_id)
    return services


@pytest.fixture(autouse=True)
def empty_queue():
    callbacks_broker().purge_queue()


def sent_text(service):
    """A text Firetext failed to take and MMG then took, both calls on record, so receipts from
    either provider apply to it."""
    sent = text(service, status="sending", sent_at=timezone.now(), sent_by="mmg")
    for provider, outcome in (("firetext", "error"), ("mmg", "success")):
        SendAttempt.objects.create(
            notification=sent, provider=provider, started_at=sent.sent_at, outcome=outcome
        )
    return sent


def firetext(notification, status="0", code=""):
    body = {"mobile": "447700900123", "status": status, "reference": str(notification.id)}
    if code:
        body["code"] = code
    return post(FIRETEXT, urlencode(body))


def mmg(notification, status="3", substatus="2"):
    body = {"reference": "mmg-1", "CID": str(notification.id), "MSISDN": "447700900123",
            "status": status, "substatus": substatus}  # fmt: skip
    return post(MMG, json.dumps(body))


def expected_payload(notification, status: str) -> dict:
    notification.refresh_from_db()
    return {
        "id": str(notification.id),
        "reference": notification.client_reference,
        "to": notification.recipient,
        "status": status,
        "created_at": payload_time(notification.created_at),
        "completed_at": payload_time(notification.updated_at),
        "sent_at": payload_time(notification.sent_at),
        "notification_type": notification.notification_type,
        "fragment_count": notification.fragment_count,
    }


@pytest.mark.parametrize(
    ("receipt", "status"),
    [
        (lambda n: firetext(n), "delivered"),
        (lambda n: firetext(n, "1", "101"), "permanent-failure"),
        (lambda n: firetext(n, "1", "102"), "temporary-failure"),
        (lambda n: mmg(n), "delivered"),
        (lambda n: firetext(n, "9"), "technical-failure"),
    ],
    ids=["firetext-delivered", "permanent", "temporary", "mmg-delivered", "unknown-status"],
)
def test_a_final_receipt_writes_one_event_and_queues_it(
    service, callback, django_capture_on_commit_callbacks, caplog, receipt, status
):
    sent = sent_text(service)
    with django_capture_on_commit_callbacks(execute=True):
        receipt(sent)  # (an unknown status is applied, and answered 400)
    event = CallbackEvent.objects.get()
    assert (event.notification_id, event.service_id, event.kind) == (
        sent.id,
        service.id,
        CallbackKind.STATUS,
    )
    assert event.state == "pending"
    assert event.payload == expected_payload(sent, status)
    assert queued_callbacks() == [str(service.id)]
    # On PostgreSQL, by the one-statement path, not its fallback.
    assert "receipt statement failed" not in caplog.text


def test_duplicate_and_out_of_order_receipts_make_one_event(
    service, callback, django_capture_on_commit_callbacks
):
    sent = sent_text(service)
    with django_capture_on_commit_callbacks(execute=True):
        firetext(sent, "2")  # pending: not final, no event
        assert CallbackEvent.objects.count() == 0
        firetext(sent)  # delivered
        firetext(sent)  # the same again
        firetext(sent, "1", "101")  # a late failure: the final status stays
        mmg(sent)
    (event,) = CallbackEvent.objects.all()
    assert event.payload["status"] == "delivered"
    assert queued_callbacks() == [str(service.id)]


def test_a_service_without_a_callback_gets_no_events(service, callback):
    other = Service.objects.create(name="Other service")
    sent = text(other, status="sending", sent_at=timezone.now())
    firetext(sent)
    assert sent.callback_events.count() == 0


def test_a_technical_failure_after_retries_writes_an_event(service, callback):
    created = text(service, retry_count=48)
    notification_retry_later(
        notification=created, delay_seconds=300, max_retries=48, reason="firetext: 503"
    )
    event = CallbackEvent.objects.get()
    assert event.payload == expected_payload(created, "technical-failure")


def test_the_timeout_sweep_writes_an_event_per_notification(service, callback):
    silent = [text(service, status="sending", sent_at=timezone.now() - timedelta(hours=73))]
    silent.append(text(service, status="pending", sent_at=timezone.now() - timedelta(hours=80)))
    text(service, status="sending", sent_at=timezone.now())
    assert sweeps.notifications_timeout() == 2
    events = CallbackEvent.objects.order_by("created_at")
    assert sorted(e.notification_id for e in events) == sorted(n.id for n in silent)
    assert {e.payload["status"] for e in events} == {"temporary-failure"}
    assert sweeps.notifications_timeout() == 0
    assert CallbackEvent.objects.count() == 2


def broken_handler(moves):
    raise RuntimeError("database went away")


def test_a_failed_status_change_writes_no_event(service, callback, settings):
    """The event is part of the change's transaction: if the change fails, neither is kept."""
    settings.STATUS_CHANGE_HANDLERS = [
        "webhooks.outbox.callback_events_record",
        "tests.webhooks.test_outbox.broken_handler",
    ]
    sent = text(service, status="sending", sent_at=timezone.now())
    with pytest.raises(RuntimeError), transaction.atomic():
        status_module.notification_update_status(
            notification_id=sent.id, status=NotificationStatus.DELIVERED
        )
    sent.refresh_from_db()
    assert sent.status == "sending"
    assert CallbackEvent.objects.count() == 0


def test_a_complaint_writes_a_complaint_event_once(
    service, callback, settings, django_capture_on_commit_callbacks
):
    settings.SNS_VERIFY_SIGNATURES = False
    sent = email(service)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_sns(sns_envelope(ses_notification("complaint.json"))).status_code == 200
        post_sns(sns_envelope(ses_notification("complaint.json")))  # SNS delivers it again
    complaint = Complaint.objects.get()
    event = CallbackEvent.objects.get()
    assert (event.kind, event.complaint_id, event.notification_id) == (
        "complaint",
        complaint.id,
        sent.id,
    )
    assert event.payload == {
        "notification_id": str(sent.id),
        "complaint_id": str(complaint.id),
        "reference": None,
        "to": "someone@example.com",
        "complaint_date": payload_time(complaint.complained_at),
    }
    assert queued_callbacks() == [str(event.service_id)]
