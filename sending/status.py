"""The one place a notification's status changes (contract section 3).

`ALLOWED_MOVES` is the rule: created → sending → pending → a final status, never backwards, and a
final status never moves. Only these functions write `Notification.status`, each in one
transaction with what the change brings along (`_on_status_changed`):

- `notification_mark_sent`: the hand-over to a provider (`sending`, with who sent it);
- `notification_update_status`: a receipt's update (also `status_if_pending` for a provider whose
  failure means something else once a text was pending);
- `notification_fail`: a failure we decide ourselves (`technical-failure` after the last retry or
  a non-retryable error, `temporary-failure` when no receipt came within 72 hours).

A receipt may change only what its provider may report on (`receipt_applies`, the one rule; a
receipt it does not let through is ignored, `receipt_ignored_reason` says why), and one that
applies closes its provider's attempts left `started` (`attempt_settle_by_receipt`).

PostgreSQL receipts (`callbacks/services.py`) take one more path for speed: the same change as SQL
(`status_change_ctes`), generated from the same table and the same rule, with `stats/`' counting
as SQL beside it (`tests/callbacks/test_receipt_paths.py` runs every receipt fixture through both
and compares).
"""

import functools
import uuid

from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils import timezone

from notifyproject.sql import quoted_columns, quoted_table, sql_literal, sql_literals
from sending.models import (
    FAILURE_STATUSES,
    FINAL_STATUSES,
    Notification,
    NotificationStatus,
    NotificationType,
    SendAttempt,
)
from sending.providers import PROVIDERS
from stats.services import daily_statistics_count, daily_statistics_count_cte
from webhooks.outbox import callback_event_cte, callback_event_record

now = timezone.now  # seam for tests

S = NotificationStatus

# From each status, where it may go next. Nothing else decides whether a status may change.
ALLOWED_MOVES: dict[str, tuple[str, ...]] = {
    S.CREATED: (S.SENDING, S.PENDING, *FINAL_STATUSES),
    S.SENDING: (S.PENDING, *FINAL_STATUSES),
    S.PENDING: FINAL_STATUSES,
    **{final: () for final in FINAL_STATUSES},
}
# The statuses a change may ask for (never `created`).
TARGET_STATUSES = frozenset(target for moves in ALLOWED_MOVES.values() for target in moves)

# What a change loads of the notification: what the statistics count, the receipt's metrics, the
# hand-over and the status callback need; never the (possibly 100 kB) content.
_LOADED_FIELDS = (
    "status", "service_id", "notification_type", "created_at", "sent_at", "sent_by",
    "updated_at", "recipient", "client_reference", "fragment_count",
)  # fmt: skip


# The channel each provider carries: the only notifications its receipts may name.
PROVIDER_CHANNELS: dict[str, str] = {name: kind for name, _, kind, *_ in PROVIDERS}


def receipt_applies(*, provider: str) -> Q:
    """The one rule for receipts (contract section 6), as a filter on notifications: a receipt
    from `provider` may change only a notification of that provider's channel that this provider
    was called for. The credentials a receipt comes with say only that one of our providers (or
    someone holding its credentials) sent it, so another provider's text, an email named on an SMS
    endpoint or a notification never sent is not its to report. "Called for" is a send attempt
    on record: it is written before the call (`sending/attempts.py`), so a receipt that beats the
    hand-over still applies.

    The ORM path reads it as it is (`receipt_ignored_reason`); the PostgreSQL receipt statement
    has it compiled into its SQL (`status_change_ctes`)."""
    return Q(notification_type=PROVIDER_CHANNELS.get(provider, "")) & Q(
        Exists(SendAttempt.objects.filter(notification_id=OuterRef("pk"), provider=provider))
    )


def receipt_ignored_reason(*, provider: str, notification_id: uuid.UUID) -> str | None:
    """Why a receipt from `provider` naming this notification must change nothing (e.g.
    "firetext receipt for a text sent by mmg"); None when `receipt_applies` lets it through, or
    when there is no such notification (an unknown one is the caller's to report)."""
    applies = ExpressionWrapper(receipt_applies(provider=provider), output_field=BooleanField())
    row = (
        Notification.objects.filter(id=notification_id)
        .annotate(applies=applies)
        .values_list("notification_type", "applies")
        .first()
    )
    if row is None or row[1]:
        return None
    kind = "a text" if row[0] == NotificationType.SMS else "an email"
    if row[0] != PROVIDER_CHANNELS.get(provider):
        return f"{provider} receipt for {kind}"
    called = SendAttempt.objects.filter(notification_id=notification_id)
    others = sorted(set(called.values_list("provider", flat=True)))
    if others:
        return f"{provider} receipt for {kind} sent by {' and '.join(others)}"
    return f"{provider} receipt for {kind} never sent"


def status_may_move(*, old: str, new: str) -> bool:
    return new in ALLOWED_MOVES[old]


def status_sources(
    *, status: str, status_if_pending: str | None = None
) -> tuple[NotificationStatus, ...]:
    """The statuses a change asking for `status` (`status_if_pending` from `pending`) moves from."""
    return tuple(
        NotificationStatus(old)
        for old in ALLOWED_MOVES
        if status_may_move(old=old, new=_wanted(old, status, status_if_pending))
    )


def _wanted(old: str, status: str, status_if_pending: str | None) -> str:
    return status_if_pending if old == S.PENDING and status_if_pending else status


def _targets_check(*statuses: str | None) -> None:
    for wanted in statuses:
        if wanted is not None and wanted not in TARGET_STATUSES:
            raise ValueError(f"a notification cannot be moved to {wanted!r}")


def _on_status_changed(notification: Notification, *, old_status: str) -> None:
    """Every status change passes here, inside the transaction that made it (committed with it or
    not at all): the one place to add what a change brings along: the day's statistics, and for a
    final status the service's status callback event (the outbox, `webhooks/outbox.py`).

    Its SQL twin is `status_change_ctes` (the PostgreSQL receipt statement): what is added here
    must be added there too, as one more `WITH` clause reading `before` and `changed`.
    """
    daily_statistics_count(
        service_id=notification.service_id,
        created_at=notification.created_at,
        notification_type=notification.notification_type,
        status=notification.status,
    )
    callback_event_record(notification=notification)


def _locked(notification_id) -> Notification | None:
    """The row, locked until the transaction ends, found by primary key alone (never through the
    status index: see `status_change_ctes`)."""
    rows = Notification.objects.select_for_update().filter(id=notification_id)
    return rows.only(*_LOADED_FIELDS).first()


def _write(notification: Notification, **changes) -> None:
    for name, value in changes.items():
        setattr(notification, name, value)
    Notification.objects.filter(id=notification.id).update(**changes)


def notification_mark_sent(
    *, notification_id: uuid.UUID, provider: str, reference: str | None
) -> bool:
    """The hand-over: `sending` from `created` with who sent it (`sent_by`, `sent_at`, the
    provider's reference) and the worker's lease released. A receipt that got there first keeps
    its status and only who sent it is filled in. True when the status changed. Inside a
    caller's transaction (the attempt's outcome, `sending/delivery.py`) it adds no savepoint."""
    current = now()
    handed_over = {"sent_by": provider, "sent_at": current, "provider_reference": reference}
    with transaction.atomic(savepoint=False):
        row = _locked(notification_id)
        if row is None:
            return False
        if status_may_move(old=row.status, new=S.SENDING):
            old_status = row.status
            _write(row, status=S.SENDING, lease_until=None, updated_at=current, **handed_over)
            _on_status_changed(row, old_status=old_status)
            return True
        if row.sent_by is None:
            _write(row, **handed_over)
    return False


def notification_update_status(
    *,
    notification_id: uuid.UUID,
    status: NotificationStatus,
    status_if_pending: NotificationStatus | None = None,
    provider_status_code: str = "",
    provider_status_reason: str = "",
) -> Notification | None:
    """Move a notification to `status` (to `status_if_pending` when it is pending) if
    `ALLOWED_MOVES` lets it, keeping the provider's code and reason, in one transaction with
    `_on_status_changed`. Returns the notification as changed, or None when nothing changed
    (unknown id, already final, the same status again).

    The row is locked by primary key, the move decided from the table, then written. The
    notification returned has only `_LOADED_FIELDS`, the code and the reason loaded. Inside a
    caller's transaction it adds no savepoint: if it fails, the caller's transaction fails too.
    """
    _targets_check(status, status_if_pending)
    # No savepoint of its own: inside a caller's transaction an error here spoils the whole
    # transaction (Django refuses further queries), so a half-made change can never commit.
    with transaction.atomic(savepoint=False):
        row = _locked(notification_id)
        if row is None:
            return None
        old_status = row.status
        new_status = _wanted(old_status, status, status_if_pending)
        if not status_may_move(old=old_status, new=new_status):
            return None
        _write(
            row,
            status=NotificationStatus(new_status),
            provider_status_code=provider_status_code[:20],
            provider_status_reason=provider_status_reason[:255],
            updated_at=now(),
        )
        _on_status_changed(row, old_status=old_status)
    return row


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
        notification_id=notification_id, status=status, provider_status_reason=reason[:255]
    )


def status_change_ctes(
    *,
    notification_id: uuid.UUID,
    provider: str,
    status: NotificationStatus,
    status_if_pending: NotificationStatus | None = None,
    provider_status_code: str = "",
    provider_status_reason: str = "",
) -> tuple[str, dict]:
    """PostgreSQL only: a receipt from `provider` as `WITH` clauses (`receipt_applies`,
    `notification_update_status` and `attempt_settle_by_receipt`), for a caller that puts more
    into the same statement (the receipt's own row), so the change and what it brings along are
    one statement. `applicable` holds the notification's id when the rule lets the receipt
    through (no row otherwise: nothing changes), `before` the status as it was (no row for an
    unknown id), `changed` the notification as it now is (no row when nothing changed),
    `counted` its statistics (`stats/`' own SQL), `outboxed` its status callback event's id and
    service (`webhooks/`' own SQL; ask for the service's drain,
    `webhooks.outbox.callback_drain_request`, once committed), `settled` the provider's attempts
    it closed. Same table, same columns, same results; parameters are `sc_*`."""
    _targets_check(status, status_if_pending)
    applicable, rule_params = _receipt_applicable_sql(provider)
    params = {
        "sc_code": provider_status_code[:20],
        "sc_reason": provider_status_reason[:255],
        "sc_now": now(),
        "sc_id": notification_id,
        "sc_provider": provider,
        **rule_params,
    }
    sql = _status_change_sql(NotificationStatus(status), status_if_pending and S(status_if_pending))
    counted, counted_params = daily_statistics_count_cte(changed="changed")
    return (
        f"applicable AS ({applicable}), {sql}, {counted}, "
        f"{callback_event_cte(changed='changed')}, {_attempts_settled_sql()}",
        params | counted_params,
    )


@functools.cache
def _receipt_applicable_sql(provider: str) -> tuple[str, dict]:
    """`receipt_applies` for one notification, compiled by Django into the SQL the ORM path
    runs, with its parameters named: the notification's id as `%(sc_id)s`, the rest (the
    provider, its channel) bound here. Made once per provider; Django writes no `%` of its own
    into this query, so each `%s` is a parameter."""
    marker = uuid.UUID(int=0)
    query = Notification.objects.filter(receipt_applies(provider=provider), id=marker)
    sql, values = query.values("id").query.sql_with_params()
    names = ["sc_id" if value == marker else f"sc_rule_{n}" for n, value in enumerate(values)]
    bound = {name: value for name, value in zip(names, values, strict=True) if name != "sc_id"}
    return sql % tuple(f"%({name})s" for name in names), bound


@functools.cache
def _attempts_settled_sql() -> str:
    """`attempt_settle_by_receipt` as a `WITH` clause, when `applicable` lets the receipt in."""
    a = quoted_columns(SendAttempt)
    return (
        f"settled AS (UPDATE {quoted_table(SendAttempt)} "  # noqa: S608
        f"SET {a['outcome']} = {sql_literal(SendAttempt.Outcome.RECEIPTED)} "
        f"WHERE {a['notification_id']} = %(sc_id)s AND {a['provider']} = %(sc_provider)s "
        f"AND {a['outcome']} = {sql_literal(SendAttempt.Outcome.STARTED)} "
        "AND EXISTS (SELECT 1 FROM applicable) RETURNING 1)"
    )


@functools.cache
def _status_change_sql(status: NotificationStatus, status_if_pending: NotificationStatus | None):
    """The text of `before` and `changed` (made once per pair of targets; `changed` only when
    `applicable` has a row). The statuses moved
    from are `status_sources`, written in as literals; everything from outside is a parameter.

    `status || ''`: with the bare column, PostgreSQL may find the row through the status index
    when its statistics say the statuses are rare (a table of old, delivered texts, then a
    backlog), and read every row in those statuses to find one id: 13 ms instead of 0.1 ms at
    50,000 (autovacuum off). The expression leaves it only the primary key.
    """
    n = quoted_columns(Notification)
    table = quoted_table(Notification)
    sources = status_sources(status=status, status_if_pending=status_if_pending)
    new_status = f"{sql_literal(status)}"
    if status_if_pending and S.PENDING in sources:
        new_status = (
            f"CASE WHEN {n['status']} = {sql_literal(S.PENDING)} "
            f"THEN {sql_literal(status_if_pending)} ELSE {sql_literal(status)} END"
        )
    returned = ", ".join(n[name] for name in ("id", *_LOADED_FIELDS))
    return (
        f"before AS (SELECT {n['status']} FROM {table} "  # noqa: S608
        f"WHERE {n['id']} = %(sc_id)s), "
        f"changed AS (UPDATE {table} SET {n['status']} = {new_status}, "
        f"{n['provider_status_code']} = %(sc_code)s, "
        f"{n['provider_status_reason']} = %(sc_reason)s, {n['updated_at']} = %(sc_now)s "
        f"WHERE {n['id']} = %(sc_id)s "
        f"AND ({n['status']} || '') IN ({sql_literals(sources)}) "
        "AND EXISTS (SELECT 1 FROM applicable) "
        f"RETURNING {returned})"
    )
