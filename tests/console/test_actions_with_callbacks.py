"""Admin actions and commands that change many notifications while a status callback is set
(as `make run` sets one up): each change queues the service's callback drain through the
broker once committed. Django Q's ORM broker closes the database connection before it writes
(outside a transaction), so nothing may still be reading rows from that connection.

Transactional, so that each change commits and its queueing runs as in production; with
`CONN_MAX_AGE=0` (SQLite's default; on PostgreSQL what a long action meets once its connection
has lived `CONN_MAX_AGE`), so the broker does close the connection on both databases."""

import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from receipts.models import Receipt, ReceiptState
from sending.models import Notification, NotificationStatus
from tests.stats.factories import notification_make
from tests.webhooks.conftest import BEARER_TOKEN, Receiver
from webhooks.models import CallbackEvent
from webhooks.services import service_callback_set

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/admin/sending/notification/"
STUCK = 3  # more than one: the loop must go on after the first change queued its drain


@pytest.fixture(autouse=True)
def _connection_closed_by_the_broker(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close()  # the next connection is opened with the setting


@pytest.fixture
def callback(service, settings):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    receiver = Receiver()
    service_callback_set(service=service, url=receiver.url, bearer_token=BEARER_TOKEN)
    yield receiver
    receiver.stop()


def _statuses(notifications) -> list[str]:
    ids = [n.id for n in notifications]
    return list(Notification.objects.filter(id__in=ids).values_list("status", flat=True))


def test_mark_technical_failure_with_a_callback_set(admin_client, service, callback, caplog):
    stuck = [notification_make(service=service) for _ in range(STUCK)]
    done = notification_make(service=service, status=NotificationStatus.DELIVERED)
    events_before = CallbackEvent.objects.count()  # `done`'s own, made delivered
    data = {
        "action": "mark_technical_failure",
        "_selected_action": [str(n.id) for n in [*stuck, done]],
        "apply": "1",
        "reason": "Firetext lost them",
    }
    with caplog.at_level(logging.WARNING, logger="console.admin.sending"):
        response = admin_client.post(LIST, data)
    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert f"Marked {STUCK} notification(s) technical-failure." in page
    assert _statuses(stuck) == [NotificationStatus.TECHNICAL_FAILURE] * STUCK
    assert _statuses([done]) == [NotificationStatus.DELIVERED]
    assert CallbackEvent.objects.count() - events_before == STUCK
    (audit,) = [
        r for r in caplog.records if r.getMessage().startswith("notifications marked technical")
    ]
    assert (audit.count, audit.user, audit.reason) == (STUCK, "operator", "Firetext lost them")


def test_timeout_notifications_with_a_callback_set(service, callback, capsys):
    old = timezone.now() - timedelta(hours=73)
    silent = [notification_make(service=service, sent_at=old) for _ in range(STUCK)]
    recent = notification_make(service=service)
    call_command("timeout_notifications")
    assert f"Timed out {STUCK} notification(s)" in capsys.readouterr().out
    assert _statuses(silent) == [NotificationStatus.TEMPORARY_FAILURE] * STUCK
    assert _statuses([recent]) == [NotificationStatus.SENDING]
    assert CallbackEvent.objects.filter(notification__in=silent).count() == STUCK


def test_receipt_replay_with_a_callback_set(admin_client, service, callback):
    """Rows read whole before the first replay (a queryset iterated, not `.iterator()`)."""
    failed = [notification_make(service=service, called="firetext") for _ in range(STUCK)]
    receipts = [
        Receipt.objects.create(
            provider="firetext",
            body=f"reference={n.id}&status=0",
            content_type="application/x-www-form-urlencoded",
            state=ReceiptState.FAILED,
        )
        for n in failed
    ]
    data = {
        "action": "replay",
        "_selected_action": [r.pk for r in receipts],
        "apply": "1",
        "reason": "replay after the outage",
    }
    response = admin_client.post("/admin/callbacks/receipt/", data)
    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert f"Replayed {STUCK} receipt(s): {STUCK} processed." in page
    assert _statuses(failed) == [NotificationStatus.DELIVERED] * STUCK
    assert CallbackEvent.objects.filter(notification__in=failed).count() == STUCK
