"""Write paths for notifications. `notification_create` is the only way one comes to be."""

from functools import cache, partial

from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from notifyproject import metrics
from sending.fragments import sms_fragment_count
from sending.models import Notification, NotificationType, Service, Template
from stats.services import daily_statistics_add

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
    template: Template | None = None,
    template_version: int | None = None,
    sender: str = "",
    unsubscribe_url: str | None = None,
) -> Notification:
    """Accept a notification: store it, count it (a text's parts too), and queue its delivery
    once committed."""
    sms = notification_type == NotificationType.SMS
    fragments = sms_fragment_count(content) if sms else None
    with transaction.atomic():
        notification = Notification.objects.create(
            service=service,
            notification_type=notification_type,
            recipient=recipient,
            international=international,
            subject=subject,
            content=content,
            fragment_count=fragments,
            client_reference=client_reference,
            template=template,
            template_version=template_version,
            sender=sender,
            unsubscribe_url=unsubscribe_url,
        )
        counts = (
            {"sms_requested": 1, "sms_fragments": fragments} if sms else {"emails_requested": 1}
        )
        daily_statistics_add(
            service_id=service.id, day=timezone.localdate(notification.created_at), counts=counts
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
