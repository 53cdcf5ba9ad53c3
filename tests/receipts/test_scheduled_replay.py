from datetime import timedelta

from django.utils import timezone

from receipts import tasks
from receipts.inbox import receipt_store
from receipts.models import Receipt, ReceiptState
from sending.models import Notification
from tests.stats.factories import notification_make


def stored_receipt(notification, *, minutes_ago: float, state=ReceiptState.FAILED) -> Receipt:
    receipt = receipt_store(
        provider="firetext",
        body=f"mobile=447700900123&status=0&time=2026-11-28+10:00:00&reference={notification.id}",
        content_type="application/x-www-form-urlencoded",
        state=state,
    )
    Receipt.objects.filter(id=receipt.id).update(
        received_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return receipt


def test_a_failed_receipt_is_applied_by_the_schedule_once_it_has_settled(service):
    notification = notification_make(service=service, called="firetext")
    settled = stored_receipt(notification, minutes_ago=5)
    fresh = stored_receipt(notification, minutes_ago=0)

    assert tasks.replay_receipts() == 1

    assert Notification.objects.get(id=notification.id).status == "delivered"
    assert Receipt.objects.get(id=settled.id).state == ReceiptState.PROCESSED
    assert Receipt.objects.get(id=fresh.id).state == ReceiptState.FAILED
    assert tasks.replay_receipts() == 0
