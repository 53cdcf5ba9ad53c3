"""Django Q tasks: each hands its arguments (text) to the function that does the work, in
delivery.py, engine.py, failover.py and sweeps.py."""

import logging
import time

from django.conf import settings

from sending import sweeps
from sending.delivery import deliveries_drain
from sending.engine import deliveries_waiting, delivery_drain_request, delivery_drain_slot_free
from sending.failover import providers_check_slow_delivery, providers_tend_back
from sending.idempotency import idempotency_keys_sweep
from sending.models import Notification, NotificationType

logger = logging.getLogger(__name__)


def drain_deliveries(notification_type: str) -> int:
    """Queued by `delivery_drain_request`: the request is taken, so the slot is given back at
    once (a notification made meanwhile queues the next drain); more waiting than one pool
    takes asks for another drain, which an idle worker here or in another qcluster runs beside
    this one. Claims stop at half the task timeout; what is left asks for the next drain."""
    if notification_type not in NotificationType.values:
        logger.error("delivery drain: no such channel", extra={"channel": notification_type})
        return 0
    delivery_drain_slot_free(notification_type)
    sent = deliveries_drain(
        notification_type=notification_type,
        until=time.monotonic() + settings.Q_CLUSTER["timeout"] / 2,
        on_more_waiting=lambda: delivery_drain_request(notification_type),
    )
    if deliveries_waiting(notification_type).exists():
        delivery_drain_request(notification_type)
    return sent


def _deliver_one(notification_type: str, notification_id: str) -> None:
    """One notification through the engine (a task queued before the engine, an operator's)."""
    deliveries_drain(
        notification_type=notification_type,
        queryset=Notification.objects.filter(id=notification_id),
    )


def deliver_sms(notification_id: str) -> None:
    _deliver_one(NotificationType.SMS, notification_id)


def deliver_email(notification_id: str) -> None:
    _deliver_one(NotificationType.EMAIL, notification_id)


# Scheduled (see the migration that creates the schedules).
def queue_due_retries() -> int:
    return sweeps.notifications_queue_due_retries()


def replay_notifications() -> int:
    return sweeps.notifications_replay()


def timeout_notifications() -> int:
    return sweeps.notifications_timeout()


def tend_back_priorities() -> list[str]:
    return providers_tend_back()


def check_slow_delivery() -> str | None:
    return providers_check_slow_delivery()


def sweep_idempotency_keys() -> int:
    return idempotency_keys_sweep()
