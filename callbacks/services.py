"""Receipts and received texts: each post is stored raw and applied once (`receipt_take`); a
stored one can be applied again safely (`receipt_process`, for `replay_receipts`)."""

import functools
import logging
import uuid
from dataclasses import dataclass
from functools import partial

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from callbacks.models import Complaint, Receipt, ReceiptState
from callbacks.parsers import (
    ComplaintReceipt,
    ReceiptEvent,
    ReceiptInvalid,
    ReceivedTextEvent,
    StatusReceipt,
    SubscriptionConfirmation,
    SubscriptionNotice,
    receipt_parser,
)
from callbacks.parsers.sns import sns_subscription_confirm
from callbacks.received_texts import received_text_record
from notifyproject import metrics
from notifyproject.sql import (
    prepared_cursor,
    quoted_columns,
    quoted_table,
    sql_literal,
    sql_literals,
)
from sending.attempts import attempt_settle_by_receipt
from sending.models import Notification
from sending.status import (
    notification_update_status,
    receipt_ignored_reason,
    status_change_ctes,
    status_sources,
)
from webhooks.outbox import callback_complaint_record, callback_drain_request

logger = logging.getLogger(__name__)


# PostgreSQL: a status receipt naming our id is stored and applied in one statement
# (`_receipt_store_and_apply`). Off, it takes the path every other receipt takes; the
# differential test (tests/callbacks/test_receipt_paths.py) runs both and compares.
SINGLE_STATEMENT_ON_POSTGRESQL = True


@dataclass(frozen=True)
class Applied:
    outcome: str
    changed: Notification | None = None
    ignored: bool = False  # not this provider's to report: stored `ignored`, changed nothing


def receipt_body_text(body: bytes) -> str:
    """The body as stored: text (PostgreSQL text can't hold NUL or bytes that are not UTF-8,
    which become U+FFFD). Parsers read this text, so a replay sees exactly what they saw."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def receipt_store(
    *,
    provider: str,
    body: str,
    content_type: str,
    state: ReceiptState = ReceiptState.RECEIVED,
    outcome: str = "",
) -> Receipt:
    return Receipt.objects.create(
        provider=provider,
        body=body,
        content_type=content_type[:255],
        state=state,
        outcome=outcome[:255],
        processed_at=None if state == ReceiptState.RECEIVED else timezone.now(),
    )


def receipt_take(*, provider: str, body: bytes, content_type: str) -> list[str]:
    """A receipt as a provider posted it: stored raw, whatever it holds, and applied. Returns
    the messages the provider is answered with (400); none means 200.

    A receipt that can't be used is stored `rejected`. A usable one is stored before it is
    applied, or, for the common case on PostgreSQL, in the same statement that applies it
    (`_receipt_store_and_apply`): either way no receipt is applied without being kept, and
    one is answered 200 only once it is committed.
    """
    text = receipt_body_text(body)
    try:
        event = receipt_parser(provider).parse(body=text, content_type=content_type)
    except ReceiptInvalid as err:
        receipt = receipt_store(
            provider=provider,
            body=text,
            content_type=content_type,
            state=ReceiptState.REJECTED,
            outcome="; ".join(err.messages),
        )
        logger.warning(
            "receipt rejected",
            extra={"provider": provider, "receipt_id": receipt.pk, "problems": err.messages},
        )
        return err.messages
    except Exception as err:  # e.g. the SNS certificate could not be fetched: try again later
        receipt = receipt_store(provider=provider, body=text, content_type=content_type)
        return _receipt_failed(receipt, err)
    if (
        SINGLE_STATEMENT_ON_POSTGRESQL
        and connection.vendor == "postgresql"
        and isinstance(event, StatusReceipt)
        and event.notification_id is not None
    ):
        return _receipt_store_and_apply(
            provider=provider, body=text, content_type=content_type, event=event
        )
    receipt = receipt_store(provider=provider, body=text, content_type=content_type)
    return _receipt_apply(receipt, event)


def receipt_process(*, receipt: Receipt) -> list[str]:
    """Parse a stored receipt again and apply it (a replay). Repeating it changes nothing
    more: status changes are conditional and complaints are unique."""
    try:
        event = receipt_parser(receipt.provider).parse(
            body=receipt.body, content_type=receipt.content_type
        )
    except ReceiptInvalid as err:
        _receipt_finish(receipt, state=ReceiptState.REJECTED, outcome="; ".join(err.messages))
        return err.messages
    except Exception as err:
        return _receipt_failed(receipt, err)
    return _receipt_apply(receipt, event)


def _receipt_apply(receipt: Receipt, event: ReceiptEvent) -> list[str]:
    """Apply a stored receipt's event; the receipt is marked processed in the same transaction
    as the change it made, or left `failed` (and replayable) when anything goes wrong."""
    try:
        if isinstance(event, SubscriptionConfirmation):
            # An HTTP call: made before, never inside, the transaction below.
            sns_subscription_confirm(event.subscribe_url)
        with transaction.atomic():
            applied = _EVENT_HANDLERS[type(event)](event, receipt)
            state = ReceiptState.IGNORED if applied.ignored else ReceiptState.PROCESSED
            _receipt_finish(receipt, state=state, outcome=applied.outcome, event=event)
    except Exception as err:
        return _receipt_failed(receipt, err, event)
    _receipt_report(receipt, event, applied)
    return list(event.problems) if isinstance(event, StatusReceipt) else []


def _receipt_failed(
    receipt: Receipt, err: Exception, event: ReceiptEvent | None = None
) -> list[str]:
    # Answered 200 all the same: the receipt is kept, and `replay_receipts` tries it again.
    logger.error(
        "receipt processing failed",
        extra={"provider": receipt.provider, "receipt_id": receipt.pk},
        exc_info=err,
    )
    _receipt_finish(receipt, state=ReceiptState.FAILED, outcome=repr(err), event=event)
    return []


def _receipt_store_and_apply(
    *, provider: str, body: str, content_type: str, event: StatusReceipt
) -> list[str]:
    """PostgreSQL: store a Firetext or MMG receipt and apply it in ONE statement: the raw row,
    the status change and its count commit together (the change and count being
    `notification_update_status`'s, as WITH clauses). One round trip and one commit instead of
    seven round trips and two commits, measured in bench/README.md. If the statement fails, or
    the receipt is not this provider's to report (`receipt_applies`: the statement then writes
    nothing), the receipt is stored and applied the ordinary way, which says why."""
    changes, params = status_change_ctes(
        notification_id=event.notification_id,
        provider=provider,
        status=event.status,
        status_if_pending=event.status_if_pending,
        provider_status_code=event.code,
        provider_status_reason=event.reason,
    )
    now = timezone.now()
    params |= {
        "r_provider": provider,
        "r_body": body,
        "r_content_type": content_type[:255],
        "r_now": now,
        "r_reference": event.reference,
        "r_reported_at": event.reported_at,
    }
    statement = _receipt_statement(event.status, event.status_if_pending, changes)
    try:
        with prepared_cursor() as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
    except DatabaseError:
        logger.exception("receipt statement failed", extra={"provider": provider})
        row = None
    if row is None:
        receipt = receipt_store(provider=provider, body=body, content_type=content_type)
        return _receipt_apply(receipt, event)
    receipt_id, outcome, status, sent_at, callback_service_id = row
    if callback_service_id is not None:  # an event was written: its service's drain sends it
        transaction.on_commit(partial(callback_drain_request, service_id=callback_service_id))
    receipt = Receipt(id=receipt_id, provider=provider, received_at=now, outcome=outcome)
    changed = Notification(id=event.notification_id, status=status, sent_at=sent_at)
    if outcome == UNKNOWN_NOTIFICATION:
        _unknown_notification(event)
    _receipt_report(receipt, event, Applied(outcome=outcome, changed=changed if status else None))
    return list(event.problems)


@functools.cache
def _receipt_statement(status: str, status_if_pending: str | None, changes: str) -> str:
    """`changes` (`applicable`, `before`, `changed`, `counted`, `outboxed` and `settled`), plus
    the receipt's row, whose outcome says what happened: as `_status_receipt_apply` words it.
    The row is written only for a receipt the rule lets through or for an unknown id (no row,
    and nothing changed, for one to ignore)."""
    r = quoted_columns(Receipt)
    n = quoted_columns(Notification)
    columns = (
        "provider", "body", "content_type", "received_at", "state", "reference", "outcome",
        "processed_at", "reported_at", "attempts",
    )  # fmt: skip
    return (
        f"WITH {changes}, "  # noqa: S608
        f"stored AS (INSERT INTO {quoted_table(Receipt)} "
        f"({', '.join(r[c] for c in columns)}) SELECT %(r_provider)s, %(r_body)s, "
        f"%(r_content_type)s, %(r_now)s, {sql_literal(ReceiptState.PROCESSED)}, "
        f"%(r_reference)s, CASE WHEN EXISTS (SELECT 1 FROM changed) "
        f"THEN 'now ' || (SELECT {n['status']} FROM changed) "
        f"WHEN NOT EXISTS (SELECT 1 FROM before) THEN {sql_literal(UNKNOWN_NOTIFICATION)} "
        f"WHEN (SELECT {n['status']} FROM before) "
        f"IN ({sql_literals(status_sources(status=status, status_if_pending=status_if_pending))}) "
        f"THEN {sql_literal(RACED)} "
        f"ELSE 'unchanged: already ' || (SELECT {n['status']} FROM before) END, "
        f"%(r_now)s, %(r_reported_at)s, 1 "
        "WHERE EXISTS (SELECT 1 FROM applicable) OR NOT EXISTS (SELECT 1 FROM before) "
        f"RETURNING {r['id']}, {r['outcome']}) "
        f"SELECT stored.{r['id']}, stored.{r['outcome']}, changed.{n['status']}, "
        f"changed.{n['sent_at']}, (SELECT service_id FROM outboxed) "
        "FROM stored LEFT JOIN changed ON true"
    )


def _receipt_finish(
    receipt: Receipt, *, state: ReceiptState, outcome: str, event: ReceiptEvent | None = None
) -> None:
    receipt.state, receipt.outcome, receipt.processed_at = state, outcome[:255], timezone.now()
    if event is not None:
        receipt.reference = event.reference[:255]
        receipt.reported_at = getattr(event, "reported_at", None)
    Receipt.objects.filter(pk=receipt.pk).update(
        state=receipt.state,
        outcome=receipt.outcome,
        processed_at=receipt.processed_at,
        reference=receipt.reference,
        reported_at=receipt.reported_at,
        attempts=F("attempts") + 1,
    )


def _receipt_report(receipt: Receipt, event: ReceiptEvent, applied: Applied) -> None:
    """One log line per receipt, with the provider's detailed status, and the metrics."""
    detail = {"provider": receipt.provider, "receipt_id": receipt.pk, "outcome": applied.outcome}
    if isinstance(event, StatusReceipt):
        detail.update(
            reference=event.reference,
            provider_status=event.provider_status,
            code=event.code,
            reason=event.reason,
            status=event.status,
        )
        if not applied.ignored:
            metrics.incr(f"callback.{receipt.provider}.{event.status}")
    elif isinstance(event, ComplaintReceipt):
        detail.update(reference=event.reference, complaint_type=event.complaint_type)
        if not applied.ignored:
            metrics.incr(f"callback.{receipt.provider}.complaint")
    elif isinstance(event, ReceivedTextEvent):
        detail.update(reference=event.reference)
    else:
        detail.update(topic=event.topic_arn)
    if applied.changed is not None and applied.changed.sent_at is not None:
        metrics.timing(
            f"callback.{receipt.provider}.{applied.changed.status}.elapsed-time",
            (receipt.received_at - applied.changed.sent_at).total_seconds(),
        )
    logger.info("receipt processed", extra=detail)


def _status_receipt_apply(event: StatusReceipt, receipt: Receipt) -> Applied:
    notification_id = event.notification_id or _notification_id_for(event.provider_reference)
    if notification_id is None:
        return _unknown_notification(event)
    if reason := receipt_ignored_reason(provider=receipt.provider, notification_id=notification_id):
        return _receipt_ignored(receipt, event, notification_id, reason)
    changed = notification_update_status(
        notification_id=notification_id,
        status=event.status,
        status_if_pending=event.status_if_pending,
        provider_status_code=event.code,
        provider_status_reason=event.reason,
    )
    attempt_settle_by_receipt(notification_id=notification_id, provider=receipt.provider)
    if changed is not None:
        return Applied(outcome=f"now {changed.status}", changed=changed)
    current = Notification.objects.filter(id=notification_id).values_list("status", flat=True)
    if not current:
        return _unknown_notification(event)
    return Applied(outcome=f"unchanged: already {current[0]}")


UNKNOWN_NOTIFICATION = "unknown notification"
# Read in-flight, then changed by another receipt before this one could change it.
RACED = "unchanged: another receipt changed it first"


def _unknown_notification(event: StatusReceipt | ComplaintReceipt) -> Applied:
    # Answered 200 all the same: the provider must not retry it for ever.
    logger.warning("receipt for unknown notification", extra={"reference": event.reference})
    return Applied(outcome=UNKNOWN_NOTIFICATION)


def _receipt_ignored(
    receipt: Receipt, event: StatusReceipt | ComplaintReceipt, notification_id, reason: str
) -> Applied:
    """Answered 200 and kept (`ignored`, with why), but it changes nothing: someone holding this
    provider's receipt credentials named a notification this provider may not report on."""
    logger.warning(
        "receipt ignored: not for a notification this provider was called for",
        extra={
            "provider": receipt.provider,
            "sent_by": Notification.objects.filter(id=notification_id)
            .values_list("sent_by", flat=True)
            .first(),
            "receipt_id": receipt.pk,
            "reference": event.reference,
            "notification_id": str(notification_id),
            "reason": reason,
        },
    )
    return Applied(outcome=f"ignored: {reason}", ignored=True)


def _notification_id_for(provider_reference: str) -> uuid.UUID | None:
    return (
        Notification.objects.filter(provider_reference=provider_reference)
        .values_list("id", flat=True)
        .first()
    )


def _complaint_record(event: ComplaintReceipt, receipt: Receipt) -> Applied:
    if Complaint.objects.filter(feedback_id=event.feedback_id).exists():
        return Applied(outcome="complaint already recorded")
    notification_id = _notification_id_for(event.provider_reference)
    if notification_id is not None and (
        reason := receipt_ignored_reason(provider=receipt.provider, notification_id=notification_id)
    ):
        return _receipt_ignored(receipt, event, notification_id, reason)
    # A racing duplicate loses quietly to the unique feedback id (and so makes no event: the
    # complaint's event is unique too).
    Complaint.objects.bulk_create(
        [
            Complaint(
                notification_id=notification_id,
                provider_reference=event.provider_reference[:255],
                feedback_id=event.feedback_id[:255],
                complaint_type=event.complaint_type[:50],
                complained_at=event.complained_at,
                receipt=receipt,
            )
        ],
        ignore_conflicts=True,
    )
    if notification_id is None:
        _unknown_notification(event)
        return Applied(outcome="complaint recorded for an unknown notification")
    callback_complaint_record(complaint=Complaint.objects.get(feedback_id=event.feedback_id[:255]))
    return Applied(outcome="complaint recorded")


def _subscription_confirmed(event: SubscriptionConfirmation, receipt: Receipt) -> Applied:
    return Applied(outcome="subscription confirmed")


def _subscription_notice(event: SubscriptionNotice, receipt: Receipt) -> Applied:
    return Applied(outcome=f"{event.kind}: nothing to do")


def _received_text_apply(event: ReceivedTextEvent, receipt: Receipt) -> Applied:
    outcome = received_text_record(
        event=event, receipt_id=receipt.pk, received_at=receipt.received_at
    )
    return Applied(outcome=outcome)


_EVENT_HANDLERS = {
    StatusReceipt: _status_receipt_apply,
    ReceivedTextEvent: _received_text_apply,
    ComplaintReceipt: _complaint_record,
    SubscriptionConfirmation: _subscription_confirmed,
    SubscriptionNotice: _subscription_notice,
}
