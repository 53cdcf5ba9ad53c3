"""Django Q tasks for status callbacks; thin: the work is in delivery.py and sweeps.py."""

from webhooks.delivery import callback_event_send
from webhooks.sweeps import callback_events_queue_due


def send_callback(event_id: str) -> str | None:
    return callback_event_send(event_id=event_id)


def queue_due_callbacks() -> int:
    return callback_events_queue_due()
