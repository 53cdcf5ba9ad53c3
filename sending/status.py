"""The one place a notification's status changes (contract section 3).

`ALLOWED_MOVES` is the rule: created → sending → pending → a final status, never backwards, and a
final status never moves. Only `notifications_status_change` writes `Notification.status`. It
takes one change or many (`StatusChange`), for the same notification or not, and in one
transaction it locks the rows by primary key, decides each move from the table, writes the batch
(one statement per set of columns written), then hands the moves to the handlers the apps above
this one registered (`settings.STATUS_CHANGE_HANDLERS`: the statistics' count, the status
callback's event), each of which writes what it needs for the whole batch at once.

The same code serves every change: a receipt or a batch of them (`receipts/`), the hand-over to
a provider (`notification_mark_sent`), our own failures (`notification_fail`: after the last
retry, a non-retryable error, no receipt in time) and the sweeps.

A receipt's change carries the provider that sent it (`StatusChange.reported_by`): it applies
only to a notification of that provider's channel that this provider was called for
(`receipt_ignored_reason`, the one rule, contract section 6); one that applies settles that
provider's attempts left `started` (`attempts_settle_by_receipts`).
"""

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from notifyproject.rows import rows_update
from sending.attempts import attempts_settle_by_receipts
from sending.models import (
    FAILURE_STATUSES,
    FINAL_STATUSES,
    Notification,
    NotificationStatus,
    NotificationType,
    SendAttempt,
)
from sending.providers import PROVIDERS
from sending.text_rules import field_fit

now = timezone.now  # seam for tests

S = NotificationStatus
N = Notification

# From each status, where it may go next. Nothing else decides whether a status may change.
ALLOWED_MOVES: dict[str, tuple[str, ...]] = {
    S.CREATED: (S.SENDING, S.PENDING, *FINAL_STATUSES),
    S.SENDING: (S.PENDING, *FINAL_STATUSES),
    S.PENDING: FINAL_STATUSES,
    **{final: () for final in FINAL_STATUSES},
}
# The statuses a change may ask for (never `created`).
TARGET_STATUSES = frozenset(target for moves in ALLOWED_MOVES.values() for target in moves)

# The channel each provider carries: the only notifications its receipts may name.
PROVIDER_CHANNELS: dict[str, str] = {name: kind for name, _, kind, *_ in PROVIDERS}

# What a change loads of the notification: what the statistics count, the receipt's metrics, the
# hand-over and the status callback need; never the (possibly 100 kB) content.
_LOADED_FIELDS = (
    "status", "service_id", "notification_type", "created_at", "sent_at", "sent_by",
    "updated_at", "recipient", "client_reference", "fragment_count", "key_type",
)  # fmt: skip


@dataclass(frozen=True)
class StatusChange:
    """A move asked for: to `status` (to `status_if_pending` from `pending`), with the provider's
    code and reason; a hand-over (`sent_by` set) also records who sent it; a receipt
    (`reported_by` set) applies only when the rule lets that provider report on it."""

    notification_id: uuid.UUID
    status: str
    status_if_pending: str | None = None
    code: str = ""
    reason: str = ""
    sent_by: str | None = None
    provider_reference: str | None = None
    reported_by: str | None = None

    def __post_init__(self):
        # A task's argument is the id as text; the rows are found and keyed by UUID.
        if not isinstance(self.notification_id, uuid.UUID):
            object.__setattr__(self, "notification_id", uuid.UUID(str(self.notification_id)))


@dataclass
class StatusMove:
    """A move made, as the handlers see it: the notification (`_LOADED_FIELDS` and `id`, as it
    is once the whole batch is applied) and the status it moved from and to."""

    notification: Notification
    old_status: str
    status: str


@dataclass(frozen=True)
class StatusOutcome:
    """What became of one `StatusChange`: `moved` (then `status` is the new status), or not, with
    `status` as it stands (None for an unknown notification) and, for a receipt the rule did
    not let through, `ignored` saying why."""

    notification_id: uuid.UUID
    moved: bool
    status: str | None
    notification: Notification | None = None
    ignored: str = ""


def status_may_move(*, old: str, new: str) -> bool:
    return new in ALLOWED_MOVES[old]


def _wanted(old: str, status: str, status_if_pending: str | None) -> str:
    return status_if_pending if old == S.PENDING and status_if_pending else status


def _targets_check(changes: Sequence[StatusChange]) -> None:
    for change in changes:
        for wanted in (change.status, change.status_if_pending):
            if wanted is not None and wanted not in TARGET_STATUSES:
                raise ValueError(f"a notification cannot be moved to {wanted!r}")


def status_change_handlers() -> tuple[Callable[[list[StatusMove]], None], ...]:
    """What a status change brings along, as the apps above `sending/` registered it in
    `settings.STATUS_CHANGE_HANDLERS` (so this module imports none of them)."""
    return handlers_load(tuple(settings.STATUS_CHANGE_HANDLERS))


@functools.cache
def handlers_load(paths: tuple[str, ...]) -> tuple[Callable, ...]:
    return tuple(import_string(path) for path in paths)


def notifications_lock(ids, *, fields: tuple[str, ...] = _LOADED_FIELDS) -> dict:
    """The rows (by id, with `fields`; none: every field), locked until the transaction ends,
    the one way a notification is locked. In primary key order, so two batches sharing rows
    wait for each other instead of deadlocking.

    Found by primary key alone, never by a conditional `UPDATE … WHERE status = …`: when
    PostgreSQL's statistics say a status is rare (a table of old, delivered texts, then a
    backlog) it may find the row through the status index and read every row in that status on
    the way."""
    rows = Notification.objects.select_for_update().filter(id__in=set(ids)).order_by("id")
    return {row.id: row for row in (rows.only(*fields) if fields else rows)}


def notifications_status_change(changes: Sequence[StatusChange]) -> list[StatusOutcome]:
    """Apply `changes` in order (a later one sees what an earlier one did), in one transaction
    with what the moves bring along; returns an outcome per change, in the same order. Inside a
    caller's transaction it adds no savepoint: if it fails, the caller's transaction fails too,
    so a half-made change can never commit."""
    _targets_check(changes)
    at = now()
    with transaction.atomic(savepoint=False):
        rows = notifications_lock(change.notification_id for change in changes)
        ignored = receipts_ignored(
            {(c.reported_by, c.notification_id) for c in changes if c.reported_by},
            {notification_id: row.notification_type for notification_id, row in rows.items()},
        )
        written: dict[uuid.UUID, dict] = {}
        moves: list[StatusMove] = []
        outcomes = [
            _change_decide(change, rows, ignored, written, moves, at=at) for change in changes
        ]
        # One statement per set of columns written: a column with one value for the batch (a
        # batch of receipts saying `delivered`) a plain SET, one that differs a CASE over the ids.
        rows_update(Notification, written)
        attempts_settle_by_receipts(
            {
                (change.reported_by, change.notification_id)
                for change in changes
                if change.reported_by
                and change.notification_id in rows
                and (change.reported_by, change.notification_id) not in ignored
            }
        )
        if moves:
            for handler in status_change_handlers():
                handler(moves)
    return outcomes


def _change_decide(change, rows, ignored, written, moves, *, at) -> StatusOutcome:
    """One change against the row as the batch has left it so far."""
    row = rows.get(change.notification_id)
    if row is None:
        return StatusOutcome(notification_id=change.notification_id, moved=False, status=None)
    if reason := ignored.get((change.reported_by, row.id)):
        return StatusOutcome(
            row.id, moved=False, status=row.status, notification=row, ignored=reason
        )
    old_status = row.status
    new_status = _wanted(old_status, change.status, change.status_if_pending)
    moved = status_may_move(old=old_status, new=new_status)
    fields = _change_fields(change, row, moved=moved, new_status=new_status, at=at)
    for name, value in fields.items():
        setattr(row, name, value)
    written.setdefault(row.id, {}).update(fields)
    if moved:
        moves.append(StatusMove(notification=row, old_status=old_status, status=new_status))
    return StatusOutcome(row.id, moved=moved, status=row.status, notification=row)


def _change_fields(change: StatusChange, row: Notification, *, moved, new_status, at) -> dict:
    """The columns a change writes: the status and when, with the provider's code and reason;
    for a hand-over who sent it (also when a receipt got there first and it has none yet), and
    the worker's lease released."""
    fields: dict = {}
    if change.sent_by is not None and (moved or row.sent_by is None):
        fields |= {
            "sent_by": change.sent_by,
            "sent_at": at,
            "provider_reference": change.provider_reference,
        }
    if not moved:
        return fields
    fields |= {"status": S(new_status), "updated_at": at}
    if change.sent_by is not None:
        fields["lease_until"] = None
    else:
        fields["provider_status_code"] = field_fit(
            Notification, "provider_status_code", change.code
        )
        fields["provider_status_reason"] = field_fit(
            Notification, "provider_status_reason", change.reason
        )
    return fields


def receipts_ignored(
    asked: set[tuple[str, uuid.UUID]], notification_types: dict[uuid.UUID, str] | None = None
) -> dict[tuple[str, uuid.UUID], str]:
    """For the receipts (provider, notification id) that the rule does not let through, why; one
    query for the send attempts of the whole batch (and one for the notifications' channels when
    not given). Unknown notifications are the caller's to report: left out."""
    if notification_types is None:
        notification_types = dict(
            Notification.objects.filter(id__in={nid for _, nid in asked}).values_list(
                "id", "notification_type"
            )
        )
    asked = {(provider, nid) for provider, nid in asked if nid in notification_types}
    if not asked:
        return {}
    called: dict[uuid.UUID, set[str]] = {}
    attempts = SendAttempt.objects.filter(notification_id__in={nid for _, nid in asked})
    for notification_id, provider in attempts.values_list("notification_id", "provider"):
        called.setdefault(notification_id, set()).add(provider)
    reasons = {}
    for provider, notification_id in asked:
        reason = receipt_ignored_reason(
            provider=provider,
            notification_type=notification_types[notification_id],
            called=called.get(notification_id, set()),
        )
        if reason:
            reasons[(provider, notification_id)] = reason
    return reasons


def receipt_ignored_reason(*, provider: str, notification_type: str, called: set[str]) -> str:
    """The one rule for receipts (contract section 6): a receipt from `provider` may change only a
    notification of that provider's channel that this provider was called for (`called`: the
    providers with a send attempt on record, written before the call, so a receipt that beats
    the hand-over still applies). The credentials a receipt comes with say only that one of our
    providers (or someone holding its credentials) sent it. Returns why a receipt must change
    nothing (e.g. "firetext receipt for a text sent by mmg"), or "" when it applies."""
    kind = "a text" if notification_type == NotificationType.SMS else "an email"
    if notification_type != PROVIDER_CHANNELS.get(provider):
        return f"{provider} receipt for {kind}"
    if provider in called:
        return ""
    if called:
        return f"{provider} receipt for {kind} sent by {' and '.join(sorted(called))}"
    return f"{provider} receipt for {kind} never sent"


def notification_mark_sent(
    *, notification_id: uuid.UUID, provider: str, reference: str | None
) -> bool:
    """The hand-over: `sending` from `created` with who sent it (`sent_by`, `sent_at`, the
    provider's reference) and the worker's lease released. A receipt that got there first keeps
    its status and only who sent it is filled in. True when the status changed."""
    change = StatusChange(
        notification_id=notification_id,
        status=S.SENDING,
        sent_by=provider,
        provider_reference=reference,
    )
    return notifications_status_change([change])[0].moved


def notification_update_status(
    *,
    notification_id: uuid.UUID,
    status: NotificationStatus,
    status_if_pending: NotificationStatus | None = None,
    provider_status_code: str = "",
    provider_status_reason: str = "",
) -> Notification | None:
    """One change (`notifications_status_change`): the notification as changed, or None when
    nothing changed (unknown id, already final, the same status again)."""
    change = StatusChange(
        notification_id=notification_id,
        status=status,
        status_if_pending=status_if_pending,
        code=provider_status_code,
        reason=provider_status_reason,
    )
    outcome = notifications_status_change([change])[0]
    return outcome.notification if outcome.moved else None


def notification_fail(
    *,
    notification_id: uuid.UUID,
    reason: str,
    status: NotificationStatus = NotificationStatus.TECHNICAL_FAILURE,
) -> Notification | None:
    """A failure we decide ourselves: `technical-failure` (the last retry failed, or the
    provider refused for good) or `temporary-failure` (no receipt in time), with `reason`."""
    if status not in FAILURE_STATUSES:
        raise ValueError(f"not a failure status: {status!r}")
    return notification_update_status(
        notification_id=notification_id, status=status, provider_status_reason=reason
    )
