from datetime import datetime

from django.db.models import QuerySet

from receipts.models import Receipt, ReceiptState
from receipts.parsers import RECEIPT_PARSER_CLASSES, StatusReceipt
from sending.models import Notification


def receipt_list_to_replay(
    *,
    received_before: datetime,
    since: datetime | None = None,
    provider: str | None = None,
    include_rejected: bool = False,
    include_given_up: bool = False,
) -> QuerySet[Receipt]:
    """Receipts that failed or were never processed, oldest first (not those given up, which
    failed `Receipt.MAX_ATTEMPTS` times, unless asked)."""
    states = [ReceiptState.RECEIVED, ReceiptState.FAILED]
    if include_rejected:
        states.append(ReceiptState.REJECTED)
    if include_given_up:
        states.append(ReceiptState.GIVEN_UP)
    receipts = Receipt.objects.filter(state__in=states, received_at__lt=received_before)
    if since is not None:
        receipts = receipts.filter(received_at__gte=since)
    if provider:
        receipts = receipts.filter(provider=provider)
    return receipts.order_by("received_at", "id")


def receipt_list_for_notification(*, notification: Notification) -> QuerySet[Receipt]:
    """The receipts that name the notification: by its id (Firetext, MMG) or its provider
    reference (SES's message id); oldest first."""
    references = [str(notification.id)]
    if notification.provider_reference:
        references.append(notification.provider_reference)
    return Receipt.objects.filter(reference__in=references).order_by("received_at", "id")


def receipt_status_read(*, receipt: Receipt) -> StatusReceipt | None:
    """What a stored receipt says (our status, the provider's code and reason), read again from
    its body without applying it or fetching an SNS certificate; None when it names no status
    or can't be read."""
    parser_class = RECEIPT_PARSER_CLASSES.get(receipt.provider)
    try:
        # Handed nothing: no SNS signature check, no topic allow-list, so no network call.
        event = parser_class().parse(body=receipt.body, content_type=receipt.content_type)
    except Exception:  # a rejected or unreadable body says nothing more than its outcome
        return None
    return event if isinstance(event, StatusReceipt) else None
