"""Django Q tasks for receipts: the inbox drain, and the schedules that make sure nothing is left
behind (`sending/schedules.py`)."""

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from receipts import inbox
from receipts.inbox import (
    receipt_drain_request,
    receipt_drain_slot_free,
    receipts_drain,
    receipts_waiting,
)
from receipts.selectors import receipt_list_to_replay

pause = time.sleep  # a seam: tests don't wait

# Younger receipts may still be in their request, or in a drain's batch.
SETTLE = timedelta(minutes=1)


# After giving the slot back, how often the drain looks for receipts whose request was skipped
# (`inbox.REQUEST_MEMO_SECONDS`): each is applied within this, not after a drain request's trip.
LOOK_EVERY_SECONDS = 0.05


def drain_receipts() -> int:
    """Queued by `receipt_drain_request` (run by the qcluster master's receipts thread): apply
    what is waiting (for at most half the time a task may run), give the slot back, then, until
    the web processes' memory of asking has run out, go on looking every `LOOK_EVERY_SECONDS`
    and applying what it finds (receipts stored after the last claim whose request found the
    slot held or was skipped). More than this run could take asks for the next drain."""
    until = time.monotonic() + settings.Q_CLUSTER["timeout"] / 2
    try:
        states = _apply_waiting(until)
    finally:
        receipt_drain_slot_free()
    freed = inbox.clock()
    while inbox.clock() - freed < inbox.REQUEST_MEMO_SECONDS:
        pause(LOOK_EVERY_SECONDS)
        states += _apply_waiting(until)
    if receipts_waiting().exists():
        receipt_drain_request(again=True)
    return sum(states.values())


def _apply_waiting(until: float):
    return receipts_drain(receipts=receipts_waiting(), until=until, walk_once=False)


def sweep_receipts() -> bool:
    """Each minute: receipts left `received` for a while (a web process or a drain that died,
    a broker that was down) get a drain, with no command. True when one was asked for."""
    stranded = receipts_waiting().filter(received_at__lt=timezone.now() - SETTLE)
    return stranded.exists() and receipt_drain_request(again=True)


def replay_receipts() -> int:
    """Scheduled: the same drain over the receipts that failed (an SNS certificate that could not
    be fetched, a database error) or were never processed. Safe to repeat; a receipt that fails
    is marked and the run goes on."""
    receipts = receipt_list_to_replay(received_before=timezone.now() - SETTLE)
    return sum(receipts_drain(receipts=receipts).values())
