"""The status module on sets: a batch of changes is one change, whatever it holds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sending.models import Notification, NotificationStatus, SendAttempt
from sending.status import StatusChange, notification_mark_sent, notifications_status_change
from stats.services import daily_statistics_recount
from tests.stats.factories import notification_make, statistics_of
from webhooks.models import CallbackEvent, ServiceCallback

S = NotificationStatus


@pytest.fixture
def callback(service):
    return ServiceCallback.objects.create(
        service=service, url="https://example.com/cb", bearer_token="a-long-enough-token"
    )


def test_a_batch_of_hand_overs_costs_a_tenth_of_one_at_a_time(service, callback):
    singles = [notification_make(service=service, status=S.CREATED) for _ in range(10)]
    batch = [notification_make(service=service, status=S.CREATED) for _ in range(100)]

    with CaptureQueriesContext(connection) as one_at_a_time:
        for notification in singles:
            notification_mark_sent(
                notification_id=notification.id, provider="mmg", reference=f"r-{notification.id}"
            )
    changes = [
        StatusChange(
            notification_id=notification.id,
            status=S.SENDING,
            sent_by="mmg",
            provider_reference=f"r-{notification.id}",
        )
        for notification in batch
    ]
    with CaptureQueriesContext(connection) as batched:
        outcomes = notifications_status_change(changes)

    per_change = len(one_at_a_time) / len(singles)
    assert len(batched) <= per_change * len(batch) / 10
    assert all(outcome.moved for outcome in outcomes)
    handed = Notification.objects.filter(id__in=[n.id for n in batch])
    assert set(handed.values_list("status", "sent_by", "lease_until")) == {(S.SENDING, "mmg", None)}
    assert {n.id: n.provider_reference for n in handed} == {n.id: f"r-{n.id}" for n in batch}


def test_a_batch_of_final_changes_counts_and_outboxes_each_once(service, callback):
    sent = [notification_make(service=service, called="firetext") for _ in range(30)]
    changes = [
        StatusChange(
            notification_id=notification.id,
            status=S.DELIVERED if number % 3 else S.PERMANENT_FAILURE,
            code="0",
            reason="x" * 1000,  # cut to the column's length
            reported_by="firetext",
        )
        for number, notification in enumerate(sent)
    ]

    notifications_status_change(changes)
    again = notifications_status_change(changes)  # a duplicate batch changes nothing

    assert not any(outcome.moved for outcome in again)
    assert statistics_of(service)["sms_delivered"] == 20
    assert statistics_of(service)["sms_failed"] == 10
    assert (
        statistics_of(service)
        == daily_statistics_recount(day=timezone.localdate(sent[0].created_at))[service.id]
    )
    assert CallbackEvent.objects.count() == 30
    reasons = set(Notification.objects.values_list("provider_status_reason", flat=True))
    length = Notification._meta.get_field("provider_status_reason").max_length
    assert reasons == {"x" * length}
    assert not SendAttempt.objects.filter(outcome=SendAttempt.Outcome.STARTED).exists()


def test_a_receipt_for_a_text_another_provider_sent_changes_nothing(service):
    sent = notification_make(service=service, called="mmg")

    [outcome] = notifications_status_change(
        [StatusChange(notification_id=sent.id, status=S.DELIVERED, reported_by="firetext")]
    )

    assert (outcome.moved, outcome.ignored) == (False, "firetext receipt for a text sent by mmg")
    assert Notification.objects.get(id=sent.id).status == S.SENDING
    assert statistics_of(service)["sms_delivered"] == 0
