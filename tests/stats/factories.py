"""Notifications made straight in the database, counted as `notification_create` counts them."""

import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from sending.models import Notification, NotificationStatus, NotificationType, SendAttempt, Service
from stats.models import STATISTICS_FIELDS, DailyStatistics
from stats.services import daily_statistics_add, daily_statistics_increment, statistics_outcome


def notification_make(
    *,
    service: Service,
    notification_type: str = NotificationType.SMS,
    status: str = NotificationStatus.SENDING,
    notification_id: uuid.UUID | None = None,
    provider_reference: str | None = None,
    sent_at: datetime | None = None,
    created_at: datetime | None = None,
    called: str | tuple[str, ...] = (),
) -> Notification:
    """`called`: the provider it was handed to (or the providers, in order: failover), each on
    record as a send attempt as delivery records them, so their receipts apply: the last one
    took it (`started` while still `created`: its call is in flight), any before it failed."""
    sent = status != NotificationStatus.CREATED
    called = (called,) if isinstance(called, str) else called
    default_sender = "firetext" if notification_type == NotificationType.SMS else "ses"
    with transaction.atomic():
        notification = Notification.objects.create(
            id=notification_id or uuid.uuid4(),
            service=service,
            notification_type=notification_type,
            recipient="447700900123"
            if notification_type == NotificationType.SMS
            else "someone@example.com",
            content="Hello",
            fragment_count=1 if notification_type == NotificationType.SMS else None,
            status=status,
            sent_by=(called[-1] if called else default_sender) if sent else None,
            provider_reference=provider_reference,
            sent_at=sent_at or (None if status == NotificationStatus.CREATED else timezone.now()),
        )
        last = SendAttempt.Outcome.SUCCESS if sent else SendAttempt.Outcome.STARTED
        for number, provider in enumerate(called, start=1):
            SendAttempt.objects.create(
                notification=notification,
                provider=provider,
                started_at=notification.sent_at or timezone.now(),
                outcome=last if number == len(called) else SendAttempt.Outcome.ERROR,
            )
        if created_at is not None:
            Notification.objects.filter(id=notification.id).update(created_at=created_at)
            notification.created_at = created_at
        # Counted as if it had got to its status the usual way.
        if notification_type == NotificationType.SMS:
            day = timezone.localdate(notification.created_at)
            daily_statistics_add(service_id=service.id, day=day, counts={"sms_fragments": 1})
        for outcome in ("requested", statistics_outcome(status)):
            if outcome:
                daily_statistics_increment(
                    service_id=service.id,
                    created_at=notification.created_at,
                    notification_type=notification_type,
                    outcome=outcome,
                )
    return notification


def statistics_of(service: Service, day=None) -> dict[str, int]:
    row = DailyStatistics.objects.filter(service=service, day=day or timezone.localdate()).values(
        *STATISTICS_FIELDS
    )
    return dict(row[0]) if row else dict.fromkeys(STATISTICS_FIELDS, 0)
