"""Write paths for notifications. `notification_create` is the only way one comes to be."""

from functools import cache, partial

from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

from notifyproject import metrics
from sending.models import Notification, NotificationType, Service
from stats.services import daily_statistics_increment

DELIVERY_TASKS = {
    NotificationType.SMS: "sending.tasks.deliver_sms",
    NotificationType.EMAIL: "sending.tasks.deliver_email",
}


def notification_create(
    *,
    service: Service,
    notification_type: NotificationType,
    recipient: str,
    content: str,
    subject: str = "",
    client_reference: str | None = None,
    international: bool = False,
) -> Notification:
    """Accept a notification: store it, count it, and queue its delivery once committed."""
    with transaction.atomic():
        notification = Notification.objects.create(
            service=service,
            notification_type=notification_type,
            recipient=recipient,
            international=international,
            subject=subject,
            content=content,
            client_reference=client_reference,
        )
        daily_statistics_increment(
            service_id=service.id,
            created_at=notification.created_at,
            notification_type=notification_type,
            outcome="requested",
        )
        transaction.on_commit(partial(notification_queue_delivery, notification=notification))
    metrics.incr(f"api.notifications.{notification_type}.created")
    return notification


@cache
def _broker():
    # django-q makes a new broker (for Redis, a new connection) on every `async_task` unless one
    # is passed in: that was a quarter of the cost of accepting a notification.
    return get_broker()


def notification_queue_delivery(*, notification: Notification) -> None:
    """Hand the notification's id to a Django Q worker (the task claims it before sending)."""
    async_task(
        DELIVERY_TASKS[notification.notification_type],
        str(notification.id),
        task_name=f"deliver-{notification.notification_type}-{notification.id}",
        broker=_broker(),
    )
