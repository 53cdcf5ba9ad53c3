"""`notification_update_status`: the rules of contract section 3 and the counts of section 7."""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from sending.models import Notification, NotificationStatus, NotificationType
from sending.status import notification_update_status
from stats.models import DailyStatistics
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus


def status_of(notification) -> str:
    return Notification.objects.get(id=notification.id).status


@pytest.mark.parametrize(
    ("start", "target", "counted"),
    [
        (S.SENDING, S.DELIVERED, "sms_delivered"),
        (S.SENDING, S.PERMANENT_FAILURE, "sms_failed"),
        (S.SENDING, S.TEMPORARY_FAILURE, "sms_failed"),
        (S.SENDING, S.TECHNICAL_FAILURE, "sms_failed"),
        (S.CREATED, S.DELIVERED, "sms_delivered"),
        (S.CREATED, S.TECHNICAL_FAILURE, "sms_failed"),
        (S.PENDING, S.DELIVERED, "sms_delivered"),
        (S.PENDING, S.TEMPORARY_FAILURE, "sms_failed"),
    ],
)
def test_a_final_status_is_set_and_counted_once(service, start, target, counted):
    notification = notification_make(service=service, status=start)

    updated = notification_update_status(
        notification_id=notification.id,
        status=target,
        provider_status_code="101",
        provider_status_reason="Unknown Subscriber",
    )

    assert updated.status == target
    stored = Notification.objects.get(id=notification.id)
    assert (stored.status, stored.provider_status_code, stored.provider_status_reason) == (
        target,
        "101",
        "Unknown Subscriber",
    )
    assert statistics_of(service) == {
        "sms_requested": 1,
        "sms_delivered": 0,
        "sms_failed": 0,
        "sms_fragments": 1,
        "emails_requested": 0,
        "emails_delivered": 0,
        "emails_failed": 0,
        counted: 1,
    }


@pytest.mark.parametrize("final", [S.DELIVERED, *[s for s in S if "failure" in s]])
@pytest.mark.parametrize("target", [S.SENDING, S.PENDING, S.DELIVERED, S.PERMANENT_FAILURE])
def test_a_final_status_never_changes(service, final, target):
    notification = notification_make(service=service, status=final)
    before = statistics_of(service)

    assert notification_update_status(notification_id=notification.id, status=target) is None
    assert status_of(notification) == final
    assert statistics_of(service) == before


def test_the_same_status_again_changes_and_counts_nothing(service):
    notification = notification_make(service=service, status=S.SENDING)
    notification_update_status(notification_id=notification.id, status=S.DELIVERED)

    assert notification_update_status(notification_id=notification.id, status=S.DELIVERED) is None
    assert statistics_of(service)["sms_delivered"] == 1


def test_pending_is_not_counted_and_pending_again_is_no_change(service):
    notification = notification_make(service=service, status=S.SENDING)

    assert notification_update_status(notification_id=notification.id, status=S.PENDING)
    assert notification_update_status(notification_id=notification.id, status=S.PENDING) is None
    assert status_of(notification) == S.PENDING
    assert statistics_of(service)["sms_failed"] + statistics_of(service)["sms_delivered"] == 0


def test_status_if_pending_applies_only_to_a_pending_notification(service):
    pending = notification_make(service=service, status=S.PENDING)
    sending = notification_make(service=service, status=S.SENDING)
    for notification in (pending, sending):
        notification_update_status(
            notification_id=notification.id,
            status=S.PERMANENT_FAILURE,
            status_if_pending=S.TEMPORARY_FAILURE,
        )

    assert status_of(pending) == S.TEMPORARY_FAILURE
    assert status_of(sending) == S.PERMANENT_FAILURE
    assert statistics_of(service)["sms_failed"] == 2


@pytest.mark.parametrize("later", [S.SENDING, S.CREATED])
def test_a_late_sending_never_overwrites_a_receipt(service, later):
    notification = notification_make(service=service, status=S.CREATED)
    notification_update_status(notification_id=notification.id, status=S.PENDING)

    if later == S.CREATED:
        with pytest.raises(ValueError):
            notification_update_status(notification_id=notification.id, status=later)
    else:
        assert notification_update_status(notification_id=notification.id, status=later) is None
    assert status_of(notification) == S.PENDING


def test_sending_from_created(service):
    notification = notification_make(service=service, status=S.CREATED)
    assert notification_update_status(notification_id=notification.id, status=S.SENDING)
    assert status_of(notification) == S.SENDING


def test_unknown_id_changes_nothing(service):
    assert notification_update_status(notification_id=uuid.uuid4(), status=S.DELIVERED) is None


def test_email_outcomes_count_in_the_email_columns(service):
    delivered = notification_make(service=service, notification_type=NotificationType.EMAIL)
    bounced = notification_make(service=service, notification_type=NotificationType.EMAIL)
    notification_update_status(notification_id=delivered.id, status=S.DELIVERED)
    notification_update_status(notification_id=bounced.id, status=S.PERMANENT_FAILURE)

    stats = statistics_of(service)
    emails = (stats["emails_requested"], stats["emails_delivered"], stats["emails_failed"])
    assert emails == (2, 1, 1)
    assert stats["sms_requested"] == 0


def test_counted_on_the_local_day_of_creation(service, settings):
    settings.TIME_ZONE = "Europe/London"
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (summer time).
    created = datetime(2026, 6, 30, 23, 30, tzinfo=ZoneInfo("UTC"))
    notification = notification_make(service=service, created_at=created)

    notification_update_status(notification_id=notification.id, status=S.DELIVERED)

    july_first = datetime(2026, 7, 1).date()
    assert statistics_of(service, july_first)["sms_delivered"] == 1
    assert statistics_of(service, july_first)["sms_requested"] == 1


def test_a_missing_row_is_made_when_an_outcome_is_counted(service):
    notification = notification_make(service=service)
    DailyStatistics.objects.filter(service=service).delete()

    notification_update_status(notification_id=notification.id, status=S.DELIVERED)

    assert DailyStatistics.objects.filter(service=service).count() == 1
    assert statistics_of(service)["sms_delivered"] == 1


def test_inside_a_callers_transaction_the_change_and_count_roll_back_together(service):
    notification = notification_make(service=service)

    with pytest.raises(RuntimeError), transaction.atomic():
        notification_update_status(notification_id=notification.id, status=S.DELIVERED)
        raise RuntimeError("the caller fails after the update")

    assert status_of(notification) == S.SENDING
    assert statistics_of(service)["sms_delivered"] == 0


def test_the_notification_returned_carries_what_callers_use(service, django_assert_num_queries):
    notification = notification_make(service=service, status=S.SENDING)

    updated = notification_update_status(
        notification_id=notification.id,
        status=S.DELIVERED,
        provider_status_code="000",
        provider_status_reason="No error reported",
    )

    with django_assert_num_queries(0):
        seen = (
            updated.id,
            updated.service_id,
            updated.notification_type,
            updated.status,
            updated.created_at,
            updated.sent_at,
            updated.provider_status_code,
            updated.provider_status_reason,
        )
    assert seen == (
        notification.id,
        service.id,
        "sms",
        S.DELIVERED,
        notification.created_at,
        notification.sent_at,
        "000",
        "No error reported",
    )
