"""The one write path of the daily statistics, and the one way a notification's status changes
after it was handed to a provider (contract sections 3 and 7)."""

import functools
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from sending.models import (
    FAILURE_STATUSES,
    IN_FLIGHT_STATUSES,
    Notification,
    NotificationStatus,
    NotificationType,
)
from stats.models import STATISTICS_FIELDS, DailyStatistics

Outcome = Literal["requested", "delivered", "failed"]

# The statuses a notification may move to `target` from: never backwards (a late "sending"
# never overwrites a receipt's "pending"), and never away from a final status.
_MAY_MOVE_FROM = {
    NotificationStatus.SENDING: (NotificationStatus.CREATED,),
    NotificationStatus.PENDING: (NotificationStatus.CREATED, NotificationStatus.SENDING),
    **{final: IN_FLIGHT_STATUSES for final in (NotificationStatus.DELIVERED, *FAILURE_STATUSES)},
}

# What the statistics count needs back from a status change; never the (possibly 100 kB) content.
_RETURNED_FIELDS = ("id", "service_id", "notification_type", "status", "created_at", "sent_at")


def statistics_column(*, notification_type: str, outcome: Outcome) -> str:
    prefix = "sms" if notification_type == NotificationType.SMS else "emails"
    return f"{prefix}_{outcome}"


def statistics_outcome(status: str) -> Outcome | None:
    """The column a notification in `status` is counted in, besides `*_requested`."""
    if status == NotificationStatus.DELIVERED:
        return "delivered"
    if status in FAILURE_STATUSES:
        return "failed"
    return None


def daily_statistics_increment(
    *, service_id, created_at: datetime, notification_type: str, outcome: Outcome
) -> None:
    """Count one outcome on the service's row for the local day of creation.

    Call it inside the transaction that changes the notification, so the two land together.
    The counting is an `F()` increment, so concurrent writers never lose a count. The row
    nearly always exists already (the notification's own `*_requested` made it), so the
    increment is tried first; only when no row was there is it made (a racing maker is fine:
    the conflict is ignored) and the increment repeated.
    """
    column = statistics_column(notification_type=notification_type, outcome=outcome)
    daily_statistics_add(
        service_id=service_id, day=timezone.localdate(created_at), counts={column: 1}
    )


def daily_statistics_add(*, service_id, day: date, counts: dict[str, int]) -> None:
    """Add `counts` (column → amount) to the service's row for `day` in one update, as
    `daily_statistics_increment` does (which see): a new text's `sms_requested` and its
    `sms_fragments` together, or a whole batch's."""
    additions = {column: F(column) + amount for column, amount in counts.items()}
    row = DailyStatistics.objects.filter(service_id=service_id, day=day)
    if row.update(**additions):
        return
    DailyStatistics.objects.bulk_create(
        [DailyStatistics(service_id=service_id, day=day)], ignore_conflicts=True
    )
    row.update(**additions)


def notification_update_status(
    *,
    notification_id: uuid.UUID,
    status: NotificationStatus,
    status_if_pending: NotificationStatus | None = None,
    provider_status_code: str = "",
    provider_status_reason: str = "",
) -> Notification | None:
    """Move a created/sending/pending notification to `status` (or to `status_if_pending` when
    it is pending), keeping the provider's detailed code/reason, in ONE transaction with the
    statistics count (delivered → *_delivered, any failure status → *_failed, sending/pending →
    no count). A conditional update (`UPDATE … WHERE status IN (…) RETURNING …`) so a race
    can't undo a final status. Returns the updated notification, or None when nothing changed
    (unknown id, already final, same status again).

    Never backwards: `sending` only from `created`, `pending` from `created` or `sending`, a
    final status from any of the three. The code and reason given replace the stored ones.
    The notification returned has only id, service_id, notification_type, status, created_at,
    sent_at and the code and reason loaded (any other field is read when first used). Inside a
    caller's transaction it adds no savepoint: if it fails, the caller's whole transaction
    fails with it.
    """
    for wanted in (status, status_if_pending):
        if wanted is not None and wanted not in _MAY_MOVE_FROM:
            raise ValueError(f"a notification cannot be moved to {wanted!r}")
    # No savepoint of its own (saves two round trips per receipt): inside a caller's
    # transaction an error here spoils the whole transaction (Django refuses further
    # queries), so a half-made change can never commit.
    with transaction.atomic(savepoint=False):
        notification = _status_change(
            notification_id=notification_id,
            status=status,
            status_if_pending=status_if_pending or status,
            code=provider_status_code[:20],
            reason=provider_status_reason[:255],
        )
        if notification is None:
            return None
        outcome = statistics_outcome(notification.status)
        if outcome:
            daily_statistics_increment(
                service_id=notification.service_id,
                created_at=notification.created_at,
                notification_type=notification.notification_type,
                outcome=outcome,
            )
    return notification


def _status_not_indexed(column: str) -> str:
    """The status column as an expression no index can serve, for `WHERE id = … AND status IN …`.

    With the bare column, PostgreSQL may find the row through the status index when its
    statistics say the statuses are rare (a table of old, delivered texts, then a backlog), and
    read every row in those statuses to find one id: 13 ms instead of 0.1 ms at 50,000.
    """
    return f"({column} || '')"


def _status_change(
    *,
    notification_id: uuid.UUID,
    status: NotificationStatus,
    status_if_pending: NotificationStatus,
    code: str,
    reason: str,
) -> Notification | None:
    """One conditional `UPDATE … RETURNING`: only from a status `status` may follow, and the
    changed row comes back in the same round trip (the ORM's `update()` returns only a count;
    reading first costs a round trip, and a retry when a racing writer gets in between).
    PostgreSQL and SQLite (3.35+) both run it; values go through the model's fields."""
    meta = Notification._meta
    names = (*_RETURNED_FIELDS, "provider_status_code", "provider_status_reason", "updated_at")
    column = {name: connection.ops.quote_name(meta.get_field(name).column) for name in names}
    allowed = _MAY_MOVE_FROM[status]
    # Only quoted names from the model go into the text; every value is a parameter.
    sql = (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} SET "  # noqa: S608
        f"{column['status']} = CASE WHEN {column['status']} = %s THEN %s ELSE %s END, "
        f"{column['provider_status_code']} = %s, {column['provider_status_reason']} = %s, "
        f"{column['updated_at']} = %s "
        f"WHERE {column['id']} = %s "
        f"AND {_status_not_indexed(column['status'])} IN ({', '.join(['%s'] * len(allowed))}) "
        f"RETURNING {', '.join(column[name] for name in _RETURNED_FIELDS)}"
    )
    params = [
        NotificationStatus.PENDING.value,
        str(status_if_pending),
        str(status),
        code,
        reason,
        meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection),
        meta.pk.get_db_prep_value(notification_id, connection),
        *[str(s) for s in allowed],
    ]
    notification = next(iter(Notification.objects.raw(sql, params)), None)
    if notification is not None:
        notification.provider_status_code, notification.provider_status_reason = code, reason
    return notification


def quoted_columns(model) -> dict[str, str]:
    """A model's quoted column names, by field name and by attribute name (`service_id`)."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    return {key: quote(f.column) for f in fields for key in (f.name, f.attname)}


def status_change_ctes(
    *,
    notification_id: uuid.UUID,
    status: NotificationStatus,
    status_if_pending: NotificationStatus | None = None,
    provider_status_code: str = "",
    provider_status_reason: str = "",
) -> tuple[str, dict]:
    """PostgreSQL only: `notification_update_status` as two WITH clauses, for a caller that
    puts more into the same statement (a receipt's own row). `changed` holds the notification
    as it now is (no row when nothing changed); `counted` adds its outcome to the day's row
    with an upsert (`ON CONFLICT … DO UPDATE`, which also makes a missing row), so the change
    and its count are one statement, whatever runs beside it. Same rules, same columns."""
    for wanted in (status, status_if_pending):
        if wanted is not None and wanted not in _MAY_MOVE_FROM:
            raise ValueError(f"a notification cannot be moved to {wanted!r}")
    params = {
        "sc_if_pending": str(status_if_pending or status),
        "sc_status": str(status),
        "sc_code": provider_status_code[:20],
        "sc_reason": provider_status_reason[:255],
        "sc_now": timezone.now(),
        "sc_id": notification_id,
        "sc_zone": timezone.get_current_timezone_name(),
    }
    return _status_change_sql(NotificationStatus(status)), params


@functools.cache
def _status_change_sql(status: NotificationStatus) -> str:
    """The text of `status_change_ctes` (made once per target status). Our own status and type
    names are written into it as literals; everything from outside is a parameter."""
    quote = connection.ops.quote_name
    n = quoted_columns(Notification)
    s = quoted_columns(DailyStatistics)
    stats_table = quote(DailyStatistics._meta.db_table)
    outcomes = {"delivered": [NotificationStatus.DELIVERED], "failed": FAILURE_STATUSES}
    counted_columns = {
        statistics_column(notification_type=kind, outcome=outcome): (kind, outcome)
        for kind in NotificationType.values
        for outcome in outcomes
    }
    adds = ", ".join(
        f"({n['notification_type']} = {sql_literal(kind)} "
        f"AND {n['status']} IN ({_literals(outcomes[outcome])}))::int"
        for kind, outcome in counted_columns.values()
    )
    increments = ", ".join(
        f"{s[column]} = {stats_table}.{s[column]} + EXCLUDED.{s[column]}"
        for column in counted_columns
    )
    requested = [c for c in STATISTICS_FIELDS if c not in counted_columns]
    countable = [NotificationStatus.DELIVERED, *FAILURE_STATUSES]
    return (
        f"changed AS (UPDATE {quote(Notification._meta.db_table)} SET "  # noqa: S608
        f"{n['status']} = CASE WHEN {n['status']} = {sql_literal(NotificationStatus.PENDING)} "
        f"THEN %(sc_if_pending)s ELSE %(sc_status)s END, "
        f"{n['provider_status_code']} = %(sc_code)s, "
        f"{n['provider_status_reason']} = %(sc_reason)s, {n['updated_at']} = %(sc_now)s "
        f"WHERE {n['id']} = %(sc_id)s "
        f"AND {_status_not_indexed(n['status'])} IN ({_literals(_MAY_MOVE_FROM[status])}) "
        f"RETURNING {', '.join(n[name] for name in _RETURNED_FIELDS)}), "
        f"counted AS (INSERT INTO {stats_table} ({s['service']}, {s['day']}, "
        f"{', '.join(s[c] for c in requested)}, {', '.join(s[c] for c in counted_columns)}) "
        f"SELECT {n['service']}, ({n['created_at']} AT TIME ZONE %(sc_zone)s)::date, "
        f"{', '.join('0' for _ in requested)}, {adds} FROM changed "
        f"WHERE {n['status']} IN ({_literals(countable)}) "
        f"ON CONFLICT ({s['service']}, {s['day']}) DO UPDATE SET {increments} RETURNING 1)"
    )


def sql_literal(text: str) -> str:
    """One of our own names (a status, a type) as an SQL string literal; refuses anything
    else, so nothing from outside ever becomes SQL text."""
    if not re.fullmatch(r"[a-z][a-z :-]*", text):
        raise ValueError(f"not one of our own names: {text!r}")
    return f"'{text}'"


def _literals(names) -> str:
    return ", ".join(sql_literal(name) for name in names)


def status_may_move_from(status: NotificationStatus) -> tuple[str, ...]:
    return _MAY_MOVE_FROM[status]


@dataclass(frozen=True)
class StatisticsCorrection:
    service_id: uuid.UUID
    day: date
    was: dict[str, int]
    now: dict[str, int]

    def changes(self) -> str:
        return ", ".join(
            f"{field} {self.was[field]} → {self.now[field]}"
            for field in STATISTICS_FIELDS
            if self.was[field] != self.now[field]
        )


def daily_statistics_recount(*, day: date) -> dict[uuid.UUID, dict[str, int]]:
    """Each service's counts for a local day, recomputed from its notifications."""
    zone = timezone.get_current_timezone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    counts: dict[uuid.UUID, dict[str, int]] = {}
    rows = (
        Notification.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("service_id", "notification_type")
        .annotate(
            requested=Count("id"),
            delivered=Count("id", filter=Q(status=NotificationStatus.DELIVERED)),
            failed=Count("id", filter=Q(status__in=FAILURE_STATUSES)),
            fragments=Sum("fragment_count", default=0),
        )
        .order_by()
    )
    for row in rows:
        service = counts.setdefault(row["service_id"], dict.fromkeys(STATISTICS_FIELDS, 0))
        for outcome in ("requested", "delivered", "failed"):
            column = statistics_column(notification_type=row["notification_type"], outcome=outcome)
            service[column] += row[outcome]
        if row["notification_type"] == NotificationType.SMS:
            service["sms_fragments"] += row["fragments"]
    return counts


def daily_statistics_rebuild(*, day: date) -> tuple[int, list[StatisticsCorrection]]:
    """Make the day's rows equal to a recount; returns how many rows were checked and what
    had to change.

    The day's rows are locked first, so a receipt being counted right now either finished
    before the recount (and is in it) or waits and adds its count on top of it.
    """
    corrections = []
    with transaction.atomic():
        rows = DailyStatistics.objects.select_for_update().filter(day=day)
        stored = {row.service_id: row for row in rows}
        counted = daily_statistics_recount(day=day)
        zeros = dict.fromkeys(STATISTICS_FIELDS, 0)
        for service_id in stored.keys() | counted.keys():
            row = stored.get(service_id)
            was = {f: getattr(row, f) for f in STATISTICS_FIELDS} if row else zeros
            now = counted.get(service_id, zeros)
            if was == now:
                continue
            DailyStatistics.objects.update_or_create(service_id=service_id, day=day, defaults=now)
            corrections.append(
                StatisticsCorrection(service_id=service_id, day=day, was=was, now=now)
            )
    return len(stored.keys() | counted.keys()), corrections
