"""Recovery over real processes: a qcluster that can't read its tasks, workers that die."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker

from notifyproject.broker import UNREADABLE_COUNT, UNREADABLE_LAST, tasks_unreadable
from sending import sweeps
from sending.models import Notification, NotificationStatus, SendAttempt
from sending.services import notification_create
from sending.tasks import deliver_sms
from tests.fakes import fake_providers  # noqa: F401  (fixture)
from tests.pipeline.test_end_to_end import running, wait_for
from tests.receipts.conftest import FIRETEXT, REFERENCE, fixture_text, post
from tests.stats.factories import notification_make


def test_a_receipt_for_a_notification_not_yet_sent_settles_it_for_good(service, wire):
    """The provider has it (our worker died after handing it over, before writing that down, so
    its attempt was left `started`): it is never sent again, its attempt no longer looks in
    flight, and the 72-hour time-out still reaches it."""
    unsent = notification_make(
        service=service,
        status=NotificationStatus.CREATED,
        notification_id=REFERENCE,
        called="firetext",
    )
    assert post(FIRETEXT, fixture_text("firetext", "pending.txt")).status_code == 200

    deliver_sms(str(unsent.id))  # its task, arriving late

    assert Notification.objects.get(id=unsent.id).status == NotificationStatus.PENDING
    assert len(wire.calls) == 0
    attempts = SendAttempt.objects.values_list("provider", "outcome")
    assert list(attempts) == [("firetext", SendAttempt.Outcome.RECEIPTED)]
    three_days_ago = timezone.now() - timedelta(hours=73)
    Notification.objects.filter(id=unsent.id).update(created_at=three_days_ago)
    assert sweeps.notifications_timeout() == 1
    timed_out = Notification.objects.get(id=unsent.id)
    assert timed_out.status == NotificationStatus.TEMPORARY_FAILURE
    assert timed_out.sent_at is None


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_task_the_workers_cannot_read_is_counted_and_health_says_so(
    service,
    fake_providers,  # noqa: F811
    settings,
):
    cache.delete_many([UNREADABLE_COUNT, UNREADABLE_LAST])
    get_broker().purge_queue()
    # The workers read the queue this process writes to, signed with another key.
    with running(
        fake_providers,
        web=False,
        SECRET_KEY="not-the-key-the-web-process-signs-with",
        Q_CLUSTER_NAME=settings.Q_CLUSTER["name"],
    ) as stack:
        notification_create(
            service=service, notification_type="sms", recipient="447700900123", content="hi"
        )
        wait_for(lambda: tasks_unreadable()[0] == 1, what="the task counted", stack=stack)

    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["unreadable_tasks"] == 1
    assert body["degraded"] == [body["degraded"][0]]
    assert "could not read a task" in body["degraded"][0]
    assert fake_providers.requests() == []
