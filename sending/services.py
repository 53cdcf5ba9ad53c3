"""Write paths for notifications. `notification_create` (one) and `notifications_create` (a
batch) are the only ways one comes to be."""

import logging
import uuid
from collections import Counter
from enum import Enum
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifyproject import metrics
from sending.engine import deliveries_drain_request
from sending.fragments import sms_fragment_count
from sending.models import KeyType, Notification, NotificationType, Service, Template
from sending.status import handlers_load

logger = logging.getLogger(__name__)


def notification_create(
    *,
    service: Service,
    notification_type: NotificationType,
    recipient: str,
    content: str,
    subject: str = "",
    client_reference: str | None = None,
    international: bool = False,
    template: Template | None = None,
    template_version: int | None = None,
    sender: str = "",
    unsubscribe_url: str | None = None,
    key_type: KeyType = KeyType.NORMAL,
) -> Notification:
    """Accept a notification: store it, count it (a text's parts too; a test key's is never
    counted), and queue its delivery once committed."""
    sms = notification_type == NotificationType.SMS
    fragments = sms_fragment_count(content) if sms else None
    # No savepoint when called inside a transaction (an idempotent request's): an error
    # here fails the caller's whole transaction, and a create costs two round trips less.
    with transaction.atomic(savepoint=False):
        notification = Notification.objects.create(
            service=service,
            notification_type=notification_type,
            recipient=recipient,
            international=international,
            subject=subject,
            content=content,
            fragment_count=fragments,
            client_reference=client_reference,
            queued_at=timezone.now(),
            template=template,
            template_version=template_version,
            sender=sender,
            unsubscribe_url=unsubscribe_url,
            key_type=key_type,
        )
        notifications_accepted(notifications=[notification])
        transaction.on_commit(partial(_queue_accepted, notifications=[notification]))
    # Counted once the caller's transaction (an idempotent request's) commits: never for a
    # create that was rolled back.
    transaction.on_commit(partial(metrics.incr, f"api.notifications.{notification_type}.created"))
    return notification


def notifications_accepted(*, notifications: list[Notification]) -> None:
    """What accepting notifications brings along in the apps above this one (the statistics'
    `*_requested`), as registered in `settings.NOTIFICATIONS_ACCEPTED_HANDLERS`; inside the
    transaction that stored them."""
    for handler in handlers_load(tuple(settings.NOTIFICATIONS_ACCEPTED_HANDLERS)):
        handler(notifications)


def notifications_create(
    *, service: Service, notifications: list[dict], key_type: KeyType = KeyType.NORMAL
) -> list[Notification]:
    """Accept a batch (each item `notification_create`'s arguments, validated): all in one
    transaction, or none. One multi-row insert, one statistics update per day and type (none for
    a test key's), and the delivery tasks queued once it commits in one round trip to the
    broker."""
    accepted = timezone.now()
    rows = [
        Notification(
            id=uuid.uuid4(),
            service=service,
            fragment_count=sms_fragment_count(fields["content"])
            if fields["notification_type"] == NotificationType.SMS
            else None,
            queued_at=accepted,
            key_type=key_type,
            **fields,
        )
        for fields in notifications
    ]
    with transaction.atomic(savepoint=False):
        _notifications_insert(rows)
        notifications_accepted(notifications=rows)
        transaction.on_commit(partial(_queue_accepted, notifications=rows))
    for notification_type, count in Counter(row.notification_type for row in rows).items():
        name = f"api.notifications.{notification_type}.created"
        transaction.on_commit(partial(metrics.incr, name, count))
    return rows


def _notifications_insert(rows: list[Notification]) -> None:
    """Insert the rows in one statement. On PostgreSQL a `COPY … FROM STDIN`: the ORM's
    multi-row INSERT prepares each row's values in Python, where psycopg's COPY adapts them in C
    (bench/README.md has the measurement). The rows carry every value (the model's defaults
    came with them), and one acceptance time for the lot."""
    if connection.vendor != "postgresql":
        Notification.objects.bulk_create(rows)
        return
    accepted = timezone.now()
    for row in rows:
        row.created_at = row.updated_at = accepted
    fields = Notification._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    names = [field.attname for field in fields]
    with connection.cursor() as cursor:
        statement = f"COPY {quote(Notification._meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                # Choices are enums: psycopg would write an enum's name, not its value.
                copy.write_row(
                    [
                        value.value if isinstance(value, Enum) else value
                        for value in (getattr(row, name) for name in names)
                    ]
                )


def _queue_accepted(*, notifications: list[Notification]) -> None:
    """The notifications are stored and answered 201 whatever the broker does: when it can't take
    the tasks, the replay sweep queues them (their `queued_at` is set, and no task follows it)."""
    try:
        notifications_queue_delivery(notifications=notifications)
    except Exception as err:  # the broker's (Redis's, the database's) errors, all alike
        metrics.incr("api.notifications.queue-failed", len(notifications))
        logger.error(
            "delivery not queued: left to the replay sweep",
            extra={
                "notification_id": str(notifications[0].id),
                "count": len(notifications),
                "error": repr(err),
            },
        )


def notification_queue_delivery(*, notification: Notification) -> None:
    """Ask for the notification's channel's drain (`sending/engine.py`), which claims it from
    the table."""
    notifications_queue_delivery(notifications=[notification])


def notifications_queue_delivery(*, notifications: list[Notification]) -> None:
    """Ask for the drain of each channel the notifications are on: at most one broker message
    per channel however many there are (none while a drain request is waiting already)."""
    deliveries_drain_request(notification.notification_type for notification in notifications)
