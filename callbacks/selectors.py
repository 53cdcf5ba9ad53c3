from datetime import datetime

from django.db.models import QuerySet

from callbacks.models import Receipt, ReceiptState


def receipt_list_to_replay(
    *,
    received_before: datetime,
    since: datetime | None = None,
    provider: str | None = None,
    include_rejected: bool = False,
) -> QuerySet[Receipt]:
    """Receipts that failed or were never processed, oldest first."""
    states = [ReceiptState.RECEIVED, ReceiptState.FAILED]
    if include_rejected:
        states.append(ReceiptState.REJECTED)
    receipts = Receipt.objects.filter(state__in=states, received_at__lt=received_before)
    if since is not None:
        receipts = receipts.filter(received_at__gte=since)
    if provider:
        receipts = receipts.filter(provider=provider)
    return receipts.order_by("received_at", "id")
