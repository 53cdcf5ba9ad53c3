"""Replaying stored receipts one row at a time, so that no row can stall the others: whatever
goes wrong with one is written on it (`failed`, with why) and the replay goes on; a receipt
that has failed `Receipt.MAX_ATTEMPTS` times is `given-up` and no longer replayed by itself."""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from callbacks.models import Receipt, ReceiptState
from callbacks.services import receipt_process

logger = logging.getLogger(__name__)


def receipt_replay(*, receipt: Receipt) -> ReceiptState:
    """Process a stored receipt again and return its state; never raises for the receipt's
    sake (a database that is down still does)."""
    try:
        # A savepoint: a statement the database refused inside must not leave the connection
        # unusable for the marking below (PostgreSQL aborts the whole transaction).
        with transaction.atomic():
            receipt_process(receipt=receipt)
    except Exception as err:
        # Even marking it failed went wrong inside (e.g. a value the database refuses): mark
        # it here with nothing but why.
        logger.exception(
            "receipt replay failed", extra={"provider": receipt.provider, "receipt_id": receipt.pk}
        )
        Receipt.objects.filter(pk=receipt.pk).update(
            state=ReceiptState.FAILED,
            outcome=repr(err)[:255],
            processed_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
    state, attempts, outcome = (
        Receipt.objects.filter(pk=receipt.pk).values_list("state", "attempts", "outcome").get()
    )
    if state == ReceiptState.FAILED and attempts >= Receipt.MAX_ATTEMPTS:
        state = ReceiptState.GIVEN_UP
        Receipt.objects.filter(pk=receipt.pk, state=ReceiptState.FAILED).update(
            state=state, outcome=f"given up after {attempts} attempts: {outcome}"[:255]
        )
        logger.error(
            "receipt given up",
            extra={"provider": receipt.provider, "receipt_id": receipt.pk, "attempts": attempts},
        )
    receipt.state = state
    return ReceiptState(state)
