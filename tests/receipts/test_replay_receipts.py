"""`manage.py replay_receipts` and the admin's replay: stored receipts processed again, once."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from receipts.inbox import receipt_store
from receipts.models import Receipt, ReceiptState
from sending.models import Notification, NotificationStatus
from tests.receipts.conftest import FIRETEXT, REFERENCE, fixture_text, post
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus


def stored_receipt(provider, name, *, age=timedelta(minutes=5), state=ReceiptState.RECEIVED):
    """A receipt as the view stores it, `age` ago, never (or not successfully) processed."""
    content_type = {"firetext": "application/x-www-form-urlencoded", "mmg": "application/json"}
    receipt = receipt_store(
        provider=provider,
        body=fixture_text(provider, name),
        content_type=content_type[provider],
    )
    Receipt.objects.filter(id=receipt.id).update(received_at=timezone.now() - age, state=state)
    return receipt


def replay(*args) -> str:
    out = StringIO()
    call_command("replay_receipts", *args, stdout=out)
    return out.getvalue()


def test_unprocessed_and_failed_receipts_are_applied_once(service):
    sent = notification_make(service=service, notification_id=REFERENCE, called=("mmg", "firetext"))
    stored_receipt("firetext", "delivered.txt")
    stored_receipt("firetext", "delivered.txt", state=ReceiptState.FAILED)

    output = replay()

    assert "2 receipt(s) to replay" in output
    assert "2/2 replayed" in output
    assert "Replayed 2 receipt(s): 2 processed" in output
    assert Notification.objects.get(id=sent.id).status == S.DELIVERED
    assert statistics_of(service)["sms_delivered"] == 1
    assert set(Receipt.objects.values_list("state", flat=True)) == {ReceiptState.PROCESSED}

    assert "0 receipt(s) to replay" in replay()  # a second run finds nothing
    assert statistics_of(service)["sms_delivered"] == 1


def test_processed_and_rejected_receipts_are_left_alone_unless_asked(service):
    sent = notification_make(service=service, notification_id=REFERENCE, called=("mmg", "firetext"))
    stored_receipt("firetext", "delivered.txt", state=ReceiptState.PROCESSED)
    stored_receipt("firetext", "declined_unknown_subscriber.txt", state=ReceiptState.REJECTED)

    assert "0 receipt(s) to replay" in replay()
    assert Notification.objects.get(id=sent.id).status == S.SENDING

    assert "1 processed" in replay("--rejected")
    assert Notification.objects.get(id=sent.id).status == S.PERMANENT_FAILURE


def test_filters_by_provider_and_time_and_skips_receipts_being_processed_now(service):
    notification_make(service=service, notification_id=REFERENCE, called=("mmg", "firetext"))
    old_mmg = stored_receipt("mmg", "delivered.json", age=timedelta(days=3))
    recent_firetext = stored_receipt("firetext", "delivered.txt", age=timedelta(hours=1))
    just_now = stored_receipt("firetext", "pending.txt", age=timedelta(seconds=1))
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    replay("--provider", "firetext", "--since", since)

    states = dict(Receipt.objects.values_list("id", "state"))
    assert states == {
        old_mmg.id: ReceiptState.RECEIVED,
        recent_firetext.id: ReceiptState.PROCESSED,
        just_now.id: ReceiptState.RECEIVED,
    }


def test_a_bad_since_is_refused(db):
    with pytest.raises(CommandError, match="--since"):
        replay("--since", "last tuesday")


def test_the_admin_lists_and_replays_receipts(service):
    sent = notification_make(service=service, notification_id=REFERENCE, called=("mmg", "firetext"))
    receipt = stored_receipt("firetext", "delivered.txt", state=ReceiptState.FAILED)
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(admin)

    listing = client.get("/admin/callbacks/receipt/", {"state__exact": "failed"})
    assert f"/admin/callbacks/receipt/{receipt.id}/change/" in listing.content.decode()

    response = client.post(
        "/admin/callbacks/receipt/",
        {"action": "replay", "_selected_action": [receipt.id], "apply": "1", "reason": "fixed"},
        follow=True,
    )

    assert "Replayed 1 receipt(s): 1 processed." in response.content.decode()
    assert Notification.objects.get(id=sent.id).status == S.DELIVERED


def test_the_admin_finds_the_receipts_of_a_notification(service):
    notification_make(service=service, notification_id=REFERENCE, called=("mmg", "firetext"))
    post(FIRETEXT, fixture_text("firetext", "delivered.txt"))  # answered, then drained
    other = stored_receipt("mmg", "unknown_notification.json")
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    listing = client.get("/admin/callbacks/receipt/", {"q": f"{{{str(REFERENCE).upper()}}}"})

    page = listing.content.decode()
    receipt = Receipt.objects.get(provider="firetext")
    assert f"/admin/callbacks/receipt/{receipt.id}/change/" in page
    assert f"/admin/callbacks/receipt/{other.id}/change/" not in page
