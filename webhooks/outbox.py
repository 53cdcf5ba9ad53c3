"""The outbox: a callback event is written in the same transaction as the change it reports, and
its service's drain is asked for once that transaction commits (contract section 10, "never
lost").

**Drains.** A service's events are sent by a drain task (`webhooks.delivery.callbacks_drain`)
that takes them a batch at a time, oldest first, over one kept-alive connection, until none is
due. Drains are queued on the callbacks cluster's own queue (`settings.CALLBACK_QUEUE`), never
the deliveries': no callback holds a worker a text or an email is waiting for. At most
`IN_FLIGHT_PER_SERVICE` drains run for a service at once, its share of the callback workers (a
quarter, at least one), so other services' drains find workers free: each holds a slot, a
cache entry made with `add` (so only one request gets it) that lives as long as a claim's lease.
Asking for a drain when every slot is held costs one cache round trip per slot and queues
nothing: the running drain will find the new event, since it looks once more after giving its
slot back. A drain whose worker died leaves its slot to run out with its claims' lease; the
per-minute sweep then asks again. So a receipt never waits on a service's endpoint, a dead
endpoint holds at most its slots' workers, and a thousand receipts a second queue a handful of
tasks, not a thousand.

Only services with a callback configured get events: the insert selects from the service's
callback row, so for a service without one it writes nothing, in the same single round trip.
A notification has at most one status event (a unique index; the status change is conditional
anyway, so a duplicate receipt changes nothing and writes nothing), a complaint one event, a
received text one event (sent to the service's inbound callback, its own endpoint row).
"""

import functools
import logging
import uuid
from datetime import UTC, datetime
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from sending.models import FINAL_STATUSES, Notification
from webhooks.models import (
    ENDPOINT_MODELS,
    CallbackEndpoint,
    CallbackEvent,
    CallbackKind,
    CallbackState,
    ServiceCallback,
)

logger = logging.getLogger(__name__)

# A service's share: a quarter of one callbacks cluster's workers (at least one), so three
# services with slow endpoints still leave workers for everyone else's callbacks.
IN_FLIGHT_PER_SERVICE = max(1, settings.CALLBACK_WORKERS // 4)
# A drain's claims are leased for longer than a task may run (django-q kills it at `timeout`),
# so a live drain keeps them; its slot runs out with them (webhooks.delivery.LEASE).
DRAIN_SLOT_SECONDS = settings.Q_CLUSTER["timeout"] + 30

# Times in payloads: ISO 8601 UTC, always with microseconds, the same in Python and in SQL.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SQL_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


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


def callback_event_record(*, notification: Notification) -> uuid.UUID | None:
    """Inside the status change's transaction: the event for `notification`'s new status, when
    it is final and its service has a callback. Returns the event's id (None when none was
    written); it is queued for sending once the transaction commits.

    `notification` needs id, service_id, notification_type, status, recipient,
    client_reference, fragment_count, created_at, sent_at and updated_at (what the status
    change returns)."""
    if notification.status not in FINAL_STATUSES:
        return None
    return _event_insert(
        service_id=notification.service_id,
        notification_id=notification.id,
        kind=CallbackKind.STATUS,
        payload=status_payload(notification),
    )


def callback_complaint_record(*, complaint) -> uuid.UUID | None:
    """Inside the complaint's transaction: the complaint event, when the complaint's
    notification is known and its service has a callback."""
    if complaint.notification_id is None:
        return None
    notification = Notification.objects.only(
        "id", "service_id", "recipient", "client_reference"
    ).get(id=complaint.notification_id)
    return _event_insert(
        service_id=notification.service_id,
        notification_id=notification.id,
        kind=CallbackKind.COMPLAINT,
        payload=complaint_payload(notification=notification, complaint=complaint),
        complaint_id=complaint.id,
    )


def callback_inbound_record(*, received_text) -> uuid.UUID | None:
    """Inside the received text's transaction: its event, when its service has an inbound
    callback (one event per text: a unique index)."""
    return _event_insert(
        service_id=received_text.service_id,
        notification_id=None,
        kind=CallbackKind.INBOUND,
        payload=inbound_payload(received_text),
        received_text_id=received_text.id,
    )


def _event_insert(
    *, service_id, notification_id, kind, payload, complaint_id=None, received_text_id=None
):
    meta = CallbackEvent._meta
    endpoint = ENDPOINT_MODELS[kind]
    event_id = uuid.uuid4()
    now = timezone.now()
    values = {
        "id": event_id,
        "service": service_id,
        "notification": notification_id,
        "complaint": complaint_id,
        "received_text": received_text_id,
        "kind": str(kind),
        "payload": payload,
        "state": str(CallbackState.PENDING),
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    fields = [meta.get_field(name) for name in values]
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    service = endpoint._meta.get_field("service").get_db_prep_value(service_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(endpoint), [*params, service])
        written = cursor.rowcount == 1
    if not written:
        return None
    transaction.on_commit(partial(callback_drain_request, service_id=service_id))
    return event_id


@functools.cache
def _insert_sql(endpoint: type[CallbackEndpoint]) -> str:
    """`INSERT … SELECT … FROM <endpoints> WHERE service = %s`: a row only when the service
    has an endpoint for the event's kind; `ON CONFLICT DO NOTHING` for the one-status-event
    and one-event-per-text indexes."""
    quote = connection.ops.quote_name
    meta = CallbackEvent._meta
    names = (
        "id", "service", "notification", "complaint", "received_text", "kind", "payload",
        "state", "attempts", "next_attempt_at", "created_at", "updated_at",
    )  # fmt: skip
    columns = ", ".join(quote(meta.get_field(name).column) for name in names)
    service_column = quote(endpoint._meta.get_field("service").column)
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {', '.join(['%s'] * len(names))} "
        f"FROM {quote(endpoint._meta.db_table)} WHERE {service_column} = %s "
        f"ON CONFLICT DO NOTHING"
    )


@functools.cache
def callback_event_cte(changed: str = "changed", now: str = "%(sc_now)s") -> str:
    """PostgreSQL: `callback_event_record` as a WITH clause named `outboxed`, for a statement
    whose clause `changed` is an `UPDATE … RETURNING` of the notification (id, service_id,
    notification_type, status, recipient, client_reference, fragment_count, created_at,
    sent_at, updated_at): the change and its event commit together, in one statement.
    `outboxed` returns the event's service; ask for its drain (`callback_drain_request`) once
    committed."""
    quote = connection.ops.quote_name
    n = {f.attname: quote(f.column) for f in Notification._meta.concrete_fields}
    e = {f.attname: quote(f.column) for f in CallbackEvent._meta.concrete_fields}
    callbacks = quote(ServiceCallback._meta.db_table)
    service_column = quote(ServiceCallback._meta.get_field("service").column)

    def at(column: str) -> str:
        return f"to_char({changed}.{n[column]} AT TIME ZONE 'UTC', '{_SQL_TIME_FORMAT}')"

    payload = (
        f"json_build_object('id', {changed}.{n['id']}, "
        f"'reference', {changed}.{n['client_reference']}, 'to', {changed}.{n['recipient']}, "
        f"'status', {changed}.{n['status']}, 'created_at', {at('created_at')}, "
        f"'completed_at', {at('updated_at')}, 'sent_at', {at('sent_at')}, "
        f"'notification_type', {changed}.{n['notification_type']}, "
        f"'fragment_count', {changed}.{n['fragment_count']})"
    )
    finals = ", ".join(f"'{status}'" for status in FINAL_STATUSES)
    columns = (
        "id", "service_id", "notification_id", "kind", "payload", "state", "attempts",
        "next_attempt_at", "created_at", "updated_at",
    )  # fmt: skip
    return (
        f"outboxed AS (INSERT INTO {quote(CallbackEvent._meta.db_table)} "  # noqa: S608
        f"({', '.join(e[c] for c in columns)}) "
        f"SELECT gen_random_uuid(), {changed}.{n['service_id']}, {changed}.{n['id']}, "
        f"'{CallbackKind.STATUS}', {payload}::jsonb, '{CallbackState.PENDING}', 0, "
        f"{now}, {now}, {now} FROM {changed} "
        f"JOIN {callbacks} ON {callbacks}.{service_column} = {changed}.{n['service_id']} "
        f"WHERE {changed}.{n['status']} IN ({finals}) "
        f"ON CONFLICT DO NOTHING RETURNING {e['id']}, {e['service_id']})"
    )


@functools.cache
def _broker():
    """The callbacks cluster's queue; one broker per process, as sending.services keeps."""
    return get_broker(settings.CALLBACK_QUEUE)


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
                        broker=_broker(),
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
