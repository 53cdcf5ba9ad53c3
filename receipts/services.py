"""Applying stored receipts and received texts, a batch at a time (`receipts_apply`, for the
inbox drain, `receipts/inbox.py`): status receipts through the status module as one change.

What each receipt came to is its outcome, written on its row: `now <status>`, `unchanged:
already <status>`, `unknown notification`, `ignored: <why>` (not its provider's to report,
contract section 6), or the complaint's, the received text's, the subscription's.
"""

import logging
import uuid
from dataclasses import dataclass, field

from django.db import transaction

from notifyproject import metrics
from receipts.models import Complaint, Receipt, ReceiptState
from receipts.parsers import (
    ComplaintReceipt,
    ReceiptEvent,
    ReceiptInvalid,
    ReceivedTextEvent,
    StatusReceipt,
    SubscriptionConfirmation,
    SubscriptionNotice,
    receipt_parser,
)
from receipts.parsers.sns import sns_subscription_confirm
from receipts.received_texts import received_text_record
from sending.models import Notification
from sending.status import (
    StatusChange,
    notifications_status_change,
    receipts_ignored,
)
from sending.text_rules import field_fit
from webhooks.outbox import callback_complaint_record

logger = logging.getLogger(__name__)

UNKNOWN_NOTIFICATION = "unknown notification"
IGNORED = "ignored: "  # the outcome of a receipt the rule did not let through starts so


@dataclass
class Applied:
    """What became of a stored receipt: its new state and outcome, the event it held (None when
    it could not be read) and the notification it changed."""

    state: ReceiptState
    outcome: str
    event: ReceiptEvent | None = None
    changed: Notification | None = field(default=None, repr=False)
    error: Exception | None = None


def receipts_apply(receipts: list[Receipt], *, simulated: bool = False) -> dict[int, Applied]:
    """Read and apply stored receipts, by id what became of each; inside the drain's
    transaction. Status receipts go through the status module as one batch; should that batch
    fail, each is applied alone, so one receipt that can't be applied never holds up the
    others: it alone is `failed`, with why."""
    applied: dict[int, Applied] = {}
    events: dict[int, ReceiptEvent] = {}
    for receipt in receipts:
        try:
            events[receipt.pk] = receipt_parser(receipt.provider, simulated=simulated).parse(
                body=receipt.body, content_type=receipt.content_type
            )
        except ReceiptInvalid as err:
            applied[receipt.pk] = Applied(ReceiptState.REJECTED, "; ".join(err.messages))
        except Exception as err:
            applied[receipt.pk] = _failed(receipt, err)
    statuses = [r for r in receipts if isinstance(events.get(r.pk), StatusReceipt)]
    try:
        with transaction.atomic():
            applied |= _status_receipts_apply(statuses, events)
    except Exception:
        for receipt in statuses:
            applied[receipt.pk] = _alone(receipt, events, _status_receipts_apply)
    for receipt in receipts:
        if receipt.pk not in applied:
            applied[receipt.pk] = _alone(receipt, events, _other_receipt_apply)
    return applied


def _alone(receipt: Receipt, events: dict, apply) -> Applied:
    """One receipt in its own savepoint: what the database refused inside must not leave the
    connection unusable for the others (PostgreSQL aborts the whole transaction)."""
    try:
        with transaction.atomic():
            return apply([receipt], events)[receipt.pk]
    except Exception as err:
        return _failed(receipt, err, events.get(receipt.pk))


def _failed(receipt: Receipt, err: Exception, event: ReceiptEvent | None = None) -> Applied:
    logger.error(
        "receipt processing failed",
        extra={"provider": receipt.provider, "receipt_id": receipt.pk},
        exc_info=err,
    )
    return Applied(ReceiptState.FAILED, repr(err), event=event, error=err)


def _status_receipts_apply(receipts: list[Receipt], events: dict) -> dict[int, Applied]:
    """The status receipts of a batch, as one change of the status module; SES's (which name
    the message id, not ours) found in one query."""
    if not receipts:
        return {}
    by_reference = _notification_ids_for(
        {events[r.pk].provider_reference for r in receipts if not events[r.pk].notification_id}
    )
    named = {}
    for receipt in receipts:
        event = events[receipt.pk]
        named[receipt.pk] = event.notification_id or by_reference.get(event.provider_reference)
    changes = [
        StatusChange(
            notification_id=named[receipt.pk],
            status=events[receipt.pk].status,
            status_if_pending=events[receipt.pk].status_if_pending,
            code=events[receipt.pk].code,
            reason=events[receipt.pk].reason,
            reported_by=receipt.provider,
        )
        for receipt in receipts
        if named[receipt.pk] is not None
    ]
    outcomes = iter(notifications_status_change(changes))
    applied = {}
    for receipt in receipts:
        event = events[receipt.pk]
        outcome = next(outcomes) if named[receipt.pk] is not None else None
        if outcome is None or outcome.status is None:
            applied[receipt.pk] = _unknown_notification(receipt, event)
        elif outcome.ignored:
            sent_by = outcome.notification.sent_by
            applied[receipt.pk] = _receipt_ignored(receipt, event, outcome.ignored, sent_by)
        elif outcome.moved:
            applied[receipt.pk] = Applied(
                ReceiptState.PROCESSED, f"now {outcome.status}", event, outcome.notification
            )
        else:
            unchanged = f"unchanged: already {outcome.status}"
            applied[receipt.pk] = Applied(ReceiptState.PROCESSED, unchanged, event)
    return applied


def _unknown_notification(receipt: Receipt, event) -> Applied:
    # Answered 200 all the same: the provider must not retry it for ever.
    logger.warning(
        "receipt for unknown notification",
        extra={"provider": receipt.provider, "reference": event.reference},
    )
    return Applied(ReceiptState.PROCESSED, UNKNOWN_NOTIFICATION, event)


def _receipt_ignored(receipt: Receipt, event, reason: str, sent_by: str | None = None) -> Applied:
    """Answered 200 and kept, with why, but it changes nothing: someone holding this provider's
    receipt credentials named a notification this provider may not report on."""
    logger.warning(
        "receipt ignored: not for a notification this provider was called for",
        extra={
            "provider": receipt.provider,
            "sent_by": sent_by,
            "receipt_id": receipt.pk,
            "reference": event.reference,
            "reason": reason,
        },
    )
    return Applied(ReceiptState.IGNORED, IGNORED + reason, event)


def _notification_ids_for(references: set[str]) -> dict[str, uuid.UUID]:
    if not references:
        return {}
    found = Notification.objects.filter(provider_reference__in=references)
    return dict(found.values_list("provider_reference", "id"))


def _other_receipt_apply(receipts: list[Receipt], events: dict) -> dict[int, Applied]:
    """A complaint, a received text, an SNS subscription: one at a time (rare)."""
    receipt = receipts[0]
    event = events[receipt.pk]
    if isinstance(event, SubscriptionConfirmation):
        sns_subscription_confirm(event.subscribe_url)
    outcome = _OTHER_HANDLERS[type(event)](event, receipt)
    state = ReceiptState.IGNORED if outcome.startswith(IGNORED) else ReceiptState.PROCESSED
    return {receipt.pk: Applied(state, outcome, event)}


def _complaint_record(event: ComplaintReceipt, receipt: Receipt) -> str:
    if Complaint.objects.filter(feedback_id=event.feedback_id).exists():
        return "complaint already recorded"
    notification_id = _notification_ids_for({event.provider_reference}).get(
        event.provider_reference
    )
    if notification_id is not None:
        ignored = receipts_ignored({(receipt.provider, notification_id)})
        if reason := ignored.get((receipt.provider, notification_id)):
            return _receipt_ignored(receipt, event, reason).outcome
    # A racing duplicate loses quietly to the unique feedback id (and so makes no event: the
    # complaint's event is unique too).
    Complaint.objects.bulk_create(
        [
            Complaint(
                notification_id=notification_id,
                provider_reference=field_fit(
                    Complaint, "provider_reference", event.provider_reference
                ),
                feedback_id=field_fit(Complaint, "feedback_id", event.feedback_id),
                complaint_type=field_fit(Complaint, "complaint_type", event.complaint_type),
                complained_at=event.complained_at,
                receipt=receipt,
            )
        ],
        ignore_conflicts=True,
    )
    if notification_id is None:
        _unknown_notification(receipt, event)
        return "complaint recorded for an unknown notification"
    feedback_id = field_fit(Complaint, "feedback_id", event.feedback_id)
    callback_complaint_record(complaint=Complaint.objects.get(feedback_id=feedback_id))
    return "complaint recorded"


def _received_text_apply(event: ReceivedTextEvent, receipt: Receipt) -> str:
    return received_text_record(event=event, receipt_id=receipt.pk, received_at=receipt.received_at)


_OTHER_HANDLERS = {
    ComplaintReceipt: _complaint_record,
    ReceivedTextEvent: _received_text_apply,
    SubscriptionConfirmation: lambda event, receipt: "subscription confirmed",
    SubscriptionNotice: lambda event, receipt: f"{event.kind}: nothing to do",
}


def receipt_report(receipt: Receipt, applied: Applied) -> None:
    """One log line per applied receipt, with the provider's detailed status, and the metrics;
    once its outcome is committed."""
    event = applied.event
    if event is None or applied.state == ReceiptState.FAILED:
        return
    detail = {"provider": receipt.provider, "receipt_id": receipt.pk, "outcome": applied.outcome}
    ignored = applied.state == ReceiptState.IGNORED
    if isinstance(event, StatusReceipt):
        detail.update(
            reference=event.reference,
            provider_status=event.provider_status,
            code=event.code,
            reason=event.reason,
            status=event.status,
        )
        if not ignored:
            metrics.incr(f"callback.{receipt.provider}.{event.status}")
    elif isinstance(event, ComplaintReceipt):
        detail.update(reference=event.reference, complaint_type=event.complaint_type)
        if not ignored:
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
