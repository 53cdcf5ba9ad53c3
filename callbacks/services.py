"""Receipts: stored raw first (`receipt_store`), then parsed and applied once
(`receipt_process`), which a replay can repeat safely."""

import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from callbacks.models import Complaint, Receipt, ReceiptState
from callbacks.parsers import (
    RECEIPT_PARSERS,
    ComplaintReceipt,
    ReceiptEvent,
    ReceiptInvalid,
    StatusReceipt,
    SubscriptionConfirmation,
    SubscriptionNotice,
)
from callbacks.sns import sns_subscription_confirm
from notifyproject import metrics
from sending.models import Notification
from stats.services import notification_update_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    outcome: str
    changed: Notification | None = None


def receipt_store(*, provider: str, body: bytes, content_type: str) -> Receipt:
    """Keep the receipt exactly as posted (as text: PostgreSQL text can't hold NUL or bytes
    that are not UTF-8, which become U+FFFD), before anything can go wrong with it."""
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return Receipt.objects.create(provider=provider, body=text, content_type=content_type[:255])


def receipt_process(*, receipt: Receipt) -> list[str]:
    """Parse a stored receipt and apply it. Returns the messages the provider is answered with
    (400); none means 200. Repeating it changes nothing more: status changes are conditional
    and complaints are unique. A receipt that could not be processed is left `failed`."""
    parser = RECEIPT_PARSERS[receipt.provider]
    log = {"provider": receipt.provider, "receipt_id": receipt.pk}
    event = None
    try:
        event = parser.parse(body=receipt.body, content_type=receipt.content_type)
        if isinstance(event, SubscriptionConfirmation):
            # An HTTP call: made before, never inside, the transaction below.
            sns_subscription_confirm(event.subscribe_url)
        with transaction.atomic():
            applied = _EVENT_HANDLERS[type(event)](event, receipt)
            _receipt_finish(
                receipt, state=ReceiptState.PROCESSED, outcome=applied.outcome, event=event
            )
    except ReceiptInvalid as err:
        logger.warning("receipt rejected", extra={**log, "problems": err.messages})
        _receipt_finish(receipt, state=ReceiptState.REJECTED, outcome="; ".join(err.messages))
        return err.messages
    except Exception as err:
        logger.exception("receipt processing failed", extra=log)
        _receipt_finish(receipt, state=ReceiptState.FAILED, outcome=repr(err), event=event)
        return []
    _receipt_report(receipt, event, applied)
    return list(event.problems) if isinstance(event, StatusReceipt) else []


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
        metrics.incr(f"callback.{receipt.provider}.{event.status}")
    elif isinstance(event, ComplaintReceipt):
        detail.update(reference=event.reference, complaint_type=event.complaint_type)
        metrics.incr(f"callback.{receipt.provider}.complaint")
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
    changed = notification_update_status(
        notification_id=notification_id,
        status=event.status,
        status_if_pending=event.status_if_pending,
        provider_status_code=event.code,
        provider_status_reason=event.reason,
    )
    if changed is not None:
        return Applied(outcome=f"now {changed.status}", changed=changed)
    current = Notification.objects.filter(id=notification_id).values_list("status", flat=True)
    if not current:
        return _unknown_notification(event)
    return Applied(outcome=f"unchanged: already {current[0]}")


def _unknown_notification(event: StatusReceipt | ComplaintReceipt) -> Applied:
    # Answered 200 all the same: the provider must not retry it for ever.
    logger.warning("receipt for unknown notification", extra={"reference": event.reference})
    return Applied(outcome="unknown notification")


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
    # A racing duplicate loses quietly to the unique feedback id.
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
    return Applied(outcome="complaint recorded")


def _subscription_confirmed(event: SubscriptionConfirmation, receipt: Receipt) -> Applied:
    return Applied(outcome="subscription confirmed")


def _subscription_notice(event: SubscriptionNotice, receipt: Receipt) -> Applied:
    return Applied(outcome=f"{event.kind}: nothing to do")


_EVENT_HANDLERS = {
    StatusReceipt: _status_receipt_apply,
    ComplaintReceipt: _complaint_record,
    SubscriptionConfirmation: _subscription_confirmed,
    SubscriptionNotice: _subscription_notice,
}
