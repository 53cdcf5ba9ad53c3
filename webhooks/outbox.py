"""The outbox: a callback event is written in the same transaction as the change it reports, and
its service's drain is asked for once that transaction commits (contract section 10, "never
lost").

**Drains.** A service's events are sent by a drain task (`webhooks.delivery.callbacks_drain`) that
takes them a batch at a time, oldest first, and POSTs several at once (the service's share,
`CALLBACK_IN_FLIGHT_PER_SERVICE`) over kept-alive connections, until none is due. Drains are queued
on the callbacks cluster's own queue (`settings.CALLBACK_QUEUE`), never the deliveries': no callback
holds a worker a text or an email is waiting for. At most `IN_FLIGHT_PER_SERVICE` drains run for a
service at once, its share of the callback workers (a quarter, at least one), so other services'
drains find workers free: each holds a slot, a cache entry made with `add` (so only one request gets
it) that lives as long as a claim's lease. Asking for a drain when every slot is held costs one
cache round trip per slot and queues nothing: the running drain will find the new event, since it
looks once more after giving its slot back. A drain whose worker died leaves its slot to run out
with its claims' lease; the per-minute sweep then asks again. So a receipt never waits on a
service's endpoint, a dead endpoint holds at most its slots' workers, and a thousand receipts a
second queue a handful of tasks, not a thousand.

Only services with an endpoint for the event's kind get events (`_events_insert`).
A notification has at most one status event (a unique index; the status change is conditional
anyway, so a duplicate receipt changes nothing and writes nothing), a complaint one event, a
received text one event (sent to the service's inbound callback, its own endpoint row).
"""

import logging
from datetime import UTC, datetime
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from notifyproject.broker import TASK_LEASE, broker_handle
from sending.models import FINAL_STATUSES, Notification
from webhooks.models import (
    ENDPOINT_MODELS,
    CallbackEvent,
    CallbackKind,
    CallbackState,
)

logger = logging.getLogger(__name__)

# A service's share: a quarter of one callbacks cluster's workers (at least one), so three
# services with slow endpoints still leave workers for everyone else's callbacks.
IN_FLIGHT_PER_SERVICE = max(1, settings.CALLBACK_WORKERS // 4)
# A drain's slot runs out with its claims' lease.
DRAIN_SLOT_SECONDS = int(TASK_LEASE.total_seconds())

# Times in payloads: ISO 8601 UTC, always with microseconds.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def payload_time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime(_TIME_FORMAT) if value else None


def status_payload(notification: Notification) -> dict:
    """Contract section 10's delivery status callback."""
    return {
        "id": str(notification.id),
        "reference": notification.client_reference,
        "to": notification.recipient,
        "status": notification.status,
        "created_at": payload_time(notification.created_at),
        "completed_at": payload_time(notification.updated_at),
        "sent_at": payload_time(notification.sent_at),
        "notification_type": notification.notification_type,
        "fragment_count": notification.fragment_count,
    }


def complaint_payload(*, notification: Notification, complaint) -> dict:
    return {
        "notification_id": str(notification.id),
        "complaint_id": str(complaint.id),
        "reference": notification.client_reference,
        "to": notification.recipient,
        "complaint_date": payload_time(complaint.complained_at or complaint.created_at),
    }


def inbound_payload(received_text) -> dict:
    """Contract section 10's inbound callback (GOV.UK Notify's shape)."""
    return {
        "id": str(received_text.id),
        "source_number": received_text.user_number,
        "destination_number": received_text.notify_number,
        "message": received_text.content,
        "date_received": payload_time(received_text.provider_date),
    }


def callback_events_record(moves) -> None:
    """Registered with the status module (`settings.STATUS_CHANGE_HANDLERS`): inside the change's
    transaction, an event for each notification of the batch that reached a final status and
    whose service has a callback; each is queued for sending once the transaction commits."""
    _events_insert(
        [
            CallbackEvent(
                service_id=move.notification.service_id,
                notification_id=move.notification.id,
                kind=CallbackKind.STATUS,
                payload=status_payload(move.notification),
            )
            for move in moves
            if move.status in FINAL_STATUSES
        ]
    )


def callback_complaint_record(*, complaint) -> None:
    """Inside the complaint's transaction: the complaint event, when the complaint's
    notification is known and its service has a callback."""
    if complaint.notification_id is None:
        return
    notification = Notification.objects.only(
        "id", "service_id", "recipient", "client_reference"
    ).get(id=complaint.notification_id)
    _events_insert(
        [
            CallbackEvent(
                service_id=notification.service_id,
                notification_id=notification.id,
                kind=CallbackKind.COMPLAINT,
                payload=complaint_payload(notification=notification, complaint=complaint),
                complaint_id=complaint.id,
            )
        ]
    )


def callback_inbound_record(*, received_text) -> None:
    """Inside the received text's transaction: its event, when its service has an inbound
    callback (one event per text: a unique index)."""
    _events_insert(
        [
            CallbackEvent(
                service_id=received_text.service_id,
                kind=CallbackKind.INBOUND,
                payload=inbound_payload(received_text),
                received_text_id=received_text.id,
            )
        ]
    )


def _events_insert(events: list[CallbackEvent]) -> None:
    """The events whose service has an endpoint for their kind, in one insert (one query per
    kind of endpoint to find them); `ON CONFLICT DO NOTHING` for the unique indexes (one status
    event per notification, one event per complaint and per received text), so a repeat writes
    nothing. Their services' drains are asked for once committed."""
    kept = []
    for endpoint in {ENDPOINT_MODELS[event.kind] for event in events}:
        of_kind = [event for event in events if ENDPOINT_MODELS[event.kind] is endpoint]
        services = {event.service_id for event in of_kind}
        with_endpoint = set(
            endpoint.objects.filter(service_id__in=services).values_list("service_id", flat=True)
        )
        kept += [event for event in of_kind if event.service_id in with_endpoint]
    if not kept:
        return
    at = timezone.now()
    for event in kept:
        event.state, event.attempts = CallbackState.PENDING, 0
        event.next_attempt_at = event.created_at = event.updated_at = at
    CallbackEvent.objects.bulk_create(kept, ignore_conflicts=True)
    for service_id in {event.service_id for event in kept}:
        transaction.on_commit(partial(callback_drain_request, service_id=service_id))


def _slot_key(service_id, slot: int) -> str:
    return f"callback-drain:{service_id}:{slot}"


def callback_drain_request(*, service_id) -> bool:
    """Make sure a drain is on its way for the service: queue one when a slot is free. True
    when one was queued. Never raises: the event is safe in the database, and the per-minute
    sweep asks again."""
    try:
        for slot in range(IN_FLIGHT_PER_SERVICE):
            if callback_drain_slot_take(service_id=service_id, slot=slot):
                try:
                    async_task(
                        "webhooks.tasks.drain_callbacks",
                        str(service_id),
                        slot,
                        task_name=f"callbacks-{service_id}-{slot}",
                        broker=broker_handle(settings.CALLBACK_QUEUE),
                        # Each attempt is recorded as a CallbackAttempt; Django Q's own success
                        # row would only cost a write. Failures are still saved.
                        save=False,
                    )
                except Exception:
                    callback_drain_slot_free(service_id=service_id, slot=slot)
                    raise
                return True
    except Exception:
        logger.exception("callback drain not queued", extra={"service_id": str(service_id)})
    return False


def callback_drain_slot_take(*, service_id, slot: int) -> bool:
    """Take the slot if it is free (for a new drain, or for a drain that gave it back and found
    more to send)."""
    return cache.add(_slot_key(service_id, slot), 1, timeout=DRAIN_SLOT_SECONDS)


def callback_drain_slot_free(*, service_id, slot: int) -> None:
    cache.delete(_slot_key(service_id, slot))
