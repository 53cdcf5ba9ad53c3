"""Django Q tasks for status callbacks; thin: the work is in delivery.py and sweeps.py."""

from webhooks.delivery import callback_event_send, callbacks_drain
from webhooks.sweeps import callback_events_queue_due


def drain_callbacks(service_id: str, slot: int = 0) -> int:
    return callbacks_drain(service_id=service_id, slot=slot)


def send_callback(event_id: str) -> str | None:
    """One event: the task queued before drains (still in a broker after an upgrade)."""
    return callback_event_send(event_id=event_id)


def queue_due_callbacks() -> int:
    return callback_events_queue_due()
