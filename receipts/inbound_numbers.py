"""Inbound numbers (contract section 6): kept and matched as GOV.UK Notify does, so a number
is the same whichever form a provider posts it in."""

from django.db import IntegrityError, transaction

from receipts.models import InboundNumber
from sending.models import Service

UK_PREFIX = "44"


class InboundNumberTaken(ValueError):
    pass


def inbound_number_normalise(raw: str) -> str:
    """A leading `44` becomes `0`; anything else (a short code such as `40604`, a `+44…`) is
    kept as given."""
    number = raw.strip()
    return "0" + number[len(UK_PREFIX) :] if number.startswith(UK_PREFIX) else number


def inbound_number_check(*, service: Service, number: str) -> str:
    """The number as it would be kept for `service`; `InboundNumberTaken` when it is empty or
    another service has it (one service per number)."""
    kept = inbound_number_normalise(number)
    if not kept:
        raise InboundNumberTaken("number must not be empty")
    if InboundNumber.objects.filter(number=kept).exclude(service=service).exists():
        raise InboundNumberTaken(f"{kept} is already the inbound number of another service")
    return kept


def inbound_number_set(*, service: Service, number: str) -> InboundNumber:
    """Give `service` this number (its previous one, if any, is let go). A number another
    service has is refused (`InboundNumberTaken`); two racing for one number meet the unique
    index, and the loser is refused too."""
    kept = inbound_number_check(service=service, number=number)
    try:
        with transaction.atomic():
            row, _ = InboundNumber.objects.update_or_create(
                service=service, defaults={"number": kept}
            )
    except IntegrityError:
        raise InboundNumberTaken(
            f"{kept} is already the inbound number of another service"
        ) from None
    return row


def inbound_number_service(*, number: str) -> Service | None:
    """The service whose inbound number this is (`number` already normalised)."""
    row = InboundNumber.objects.filter(number=number).select_related("service").first()
    return row.service if row else None
