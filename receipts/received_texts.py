"""Received texts (contract section 6): each stored once, matched to the service whose inbound
number it was sent to, and handed to that service's inbound callback in the same transaction."""

import logging
import uuid
from datetime import datetime

from receipts.inbound_numbers import inbound_number_service
from receipts.models import ReceivedText
from receipts.parsers import ReceivedTextEvent
from webhooks.outbox import callback_inbound_record

logger = logging.getLogger(__name__)

STORED = "received text stored"
UNMATCHED = "received text stored: no service has this number"
REPEATED = "received text already stored: changed nothing"


def received_text_record(
    *, event: ReceivedTextEvent, receipt_id: int, received_at: datetime
) -> str:
    """Inside the raw post's transaction: the text's row and, when its service has an inbound
    callback, the callback's event. Returns the outcome. A repeat (MMG's ID again, or the same
    raw post replayed) writes nothing: the unique index decides, whatever the race."""
    if ReceivedText.objects.filter(receipt_id=receipt_id).exists():
        return REPEATED
    service = inbound_number_service(number=event.notify_number)
    text = ReceivedText(
        id=uuid.uuid4(),
        service=service,
        provider=event.provider,
        provider_reference=event.provider_reference,
        user_number=event.user_number,
        notify_number=event.notify_number,
        content=event.content,
        provider_date=event.provider_date or received_at,
        created_at=received_at,
        receipt_id=receipt_id,
    )
    ReceivedText.objects.bulk_create([text], ignore_conflicts=True)
    if not ReceivedText.objects.filter(id=text.id).exists():
        return REPEATED
    if service is None:
        # Answered 200 all the same: the provider must not retry; an operator sees it listed.
        logger.warning(
            "received text for a number no service has",
            extra={"provider": event.provider, "received_text_id": str(text.id)},
        )
        return UNMATCHED
    callback_inbound_record(received_text=text)
    return STORED
