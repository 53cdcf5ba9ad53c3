"""Django Q tasks for receipts."""

from datetime import timedelta

from django.utils import timezone

from callbacks.replay import receipt_replay
from callbacks.selectors import receipt_list_to_replay

# Younger receipts may still be in their request; a run does at most this many.
SETTLE = timedelta(minutes=1)
BATCH = 1000


def replay_receipts() -> int:
    """Scheduled: process again the receipts that failed (an SNS certificate that could not be
    fetched, a database error) or were never processed. Safe to repeat; a receipt that fails
    is marked and the run goes on (`receipt_replay`)."""
    receipts = receipt_list_to_replay(received_before=timezone.now() - SETTLE)[:BATCH]
    count = 0
    for receipt in receipts:
        receipt_replay(receipt=receipt)
        count += 1
    return count
