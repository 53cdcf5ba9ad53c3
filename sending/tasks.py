"""Django Q tasks: each hands a notification id (text) to the function that does the work, in
delivery.py, failover.py and sweeps.py."""

from sending import sweeps
from sending.delivery import notification_deliver_email, notification_deliver_sms
from sending.failover import providers_check_slow_delivery, providers_tend_back
from sending.idempotency import idempotency_keys_sweep


def deliver_sms(notification_id: str) -> None:
    notification_deliver_sms(notification_id=notification_id)


def deliver_email(notification_id: str) -> None:
    notification_deliver_email(notification_id=notification_id)


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
