"""Provider calls as `SendAttempt` rows: written `started` (and committed) before the call, given
their outcome after it.

A worker that dies mid-call leaves its attempt `started`: nobody knows whether the provider took
the notification. The next claim (once the dead worker's lease has run out) holds it for
`SEND_UNKNOWN_OUTCOME_HOLD_SECONDS` from the call's start, waiting for a receipt: a receipt in that
time moves the status on and settles it for good. Only after the hold may it be sent again; the
old attempt then becomes `unknown`, and the resend is logged and counted
(`tasks.deliver-{type}.resent-after-unknown`).

A receipt from the provider settles it too: the receipt shows the call reached the provider, so
once a receipt from that provider applies to the notification (`sending.status`, the rule),
that provider's attempts still `started` become `receipted` (`attempts_settle_by_receipts`) rather
than looking in flight for ever. Only that provider's: the receipt says nothing of another's
call. A live worker whose call is still in flight writes its own outcome over it afterwards
(`attempts_finish`), which is the better record.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from notifyproject import metrics
from notifyproject.rows import rows_update
from sending.models import Notification, SendAttempt
from sending.text_rules import field_fit

logger = logging.getLogger(__name__)

now = timezone.now  # seam for tests


def attempt_outcome(error: Exception | None, duration_ms: int, *, simulated: bool = False) -> dict:
    """What a finished call writes on its attempt (`attempts_finish`)."""
    if error:
        outcome = SendAttempt.Outcome.ERROR
    else:
        outcome = SendAttempt.Outcome.SIMULATED if simulated else SendAttempt.Outcome.SUCCESS
    return {
        "outcome": outcome,
        "duration_ms": duration_ms,
        "status_code": getattr(error, "status_code", None),
        "error": field_fit(SendAttempt, "error", str(error)) if error else "",
    }


def attempts_finish(outcomes: dict[int, dict]) -> None:
    """Calls' outcomes (attempt id → `attempt_outcome`), a drain's completed group at once: one
    statement (`rows_update`), not one a call."""
    rows_update(SendAttempt, outcomes)


def attempts_settle_by_receipts(reported: set[tuple[str, object]]) -> None:
    """For each (provider, notification id) of receipts that applied, that provider's attempts on
    that notification still `started` become `receipted`: one statement per provider."""
    by_provider: dict[str, set] = {}
    for provider, notification_id in reported:
        by_provider.setdefault(provider, set()).add(notification_id)
    for provider, notification_ids in by_provider.items():
        SendAttempt.objects.filter(
            notification_id__in=notification_ids,
            provider=provider,
            outcome=SendAttempt.Outcome.STARTED,
        ).update(outcome=SendAttempt.Outcome.RECEIPTED)


def attempts_unknown_hold(notifications: list[Notification]) -> dict[object, datetime]:
    """For a claim, under the rows' locks: those of `notifications` that must wait for a receipt,
    each with until when (the others may be sent now). One query for the whole claim.

    A `started` attempt seen by a claim belongs to a worker that died: a live one holds the
    lease for longer than any call can take. Only a notification claimed before can have one, so
    a first claim reads no attempts: a call is made under a lease, and the lease is let go only
    with the call's outcome and the hand-over (one transaction) or with a planned next attempt
    (a retry, a hold), and a worker that dies keeps it. Once the hold has passed, the unsettled
    attempts become `unknown` and the resend is logged and counted.
    """
    claimed_before = {
        row.id: row
        for row in notifications
        if row.lease_until is not None or row.next_attempt_at is not None
    }
    if not claimed_before:
        return {}
    unsettled = SendAttempt.objects.filter(
        notification_id__in=list(claimed_before), outcome=SendAttempt.Outcome.STARTED
    )
    last_started = dict(
        unsettled.order_by()
        .values_list("notification_id")
        .annotate(last=Max("started_at"))
        .values_list("notification_id", "last")
    )
    current, hold = now(), timedelta(seconds=settings.SEND_UNKNOWN_OUTCOME_HOLD_SECONDS)
    holds, resent = {}, []
    for notification_id, last in last_started.items():
        hold_until = last + hold
        extra = {
            "notification_id": str(notification_id),
            "call_started_at": last.isoformat(),
            "hold_until": hold_until.isoformat(),
        }
        if current < hold_until:
            logger.warning("delivery held: the last provider call has no outcome", extra=extra)
            holds[notification_id] = hold_until
            continue
        resent.append(notification_id)
        kind = claimed_before[notification_id].notification_type
        metrics.incr(f"tasks.deliver-{kind}.resent-after-unknown")
        logger.warning(
            "resending after a provider call with no outcome and no receipt", extra=extra
        )
    if resent:
        unsettled.filter(notification_id__in=resent).update(outcome=SendAttempt.Outcome.UNKNOWN)
    return holds
