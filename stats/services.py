"""The daily statistics (contract section 7): the one write path of their counts (called when a
notification is accepted and, by `sending/status.py`, when its status changes), the recount and
the rebuild."""

import functools
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from notifyproject.sql import quoted_columns, quoted_table, sql_literal, sql_literals
from sending.models import (
    FAILURE_STATUSES,
    KeyType,
    Notification,
    NotificationStatus,
    NotificationType,
)
from stats.models import STATISTICS_FIELDS, DailyStatistics

Outcome = Literal["requested", "delivered", "failed"]


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
    One statement, `INSERT … ON CONFLICT … DO UPDATE SET column = column + amount` (PostgreSQL and
    SQLite alike): it makes the day's row when it is missing and never loses a concurrent
    count, in one round trip where an `UPDATE` then an `INSERT` took two on the first of a
    day (and the ORM's building of both, a tenth of an API create's CPU).
    """
    column = statistics_column(notification_type=notification_type, outcome=outcome)
    daily_statistics_add(
        service_id=service_id, day=timezone.localdate(created_at), counts={column: 1}
    )


def daily_statistics_add(*, service_id, day: date, counts: dict[str, int]) -> None:
    """Add `counts` (column → amount) to the service's row for `day`, as
    `daily_statistics_increment` does (which see): a new text's `sms_requested` and its
    `sms_fragments` together, or a whole batch's. One statement on PostgreSQL and SQLite alike."""
    columns = tuple(sorted(counts))
    sql, slots = _add_sql(columns)
    given = {
        _SERVICE: DailyStatistics._meta.get_field("service").get_db_prep_value(
            service_id, connection
        ),
        _DAY: connection.ops.adapt_datefield_value(day),
        **counts,
    }
    params = [given[slot] if isinstance(slot, str) else slot[0] for slot in slots]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


_SERVICE, _DAY = "service", "day"


@functools.cache
def _add_sql(columns: tuple[str, ...]) -> tuple[str, list]:
    """The upsert's text for these counted columns, and what each of its parameters is: the
    service, the day, a counted column's amount (by name), or (in a 1-tuple) another column's
    default (every column of the model is written, so one added later gets its default)."""
    quote = connection.ops.quote_name
    table = quote(DailyStatistics._meta.db_table)
    names, slots = [], []
    for field in DailyStatistics._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(quote(field.column))
        if field.name in (_SERVICE, _DAY, *columns):
            slots.append(field.name)
        else:
            slots.append((field.get_db_prep_save(field.get_default(), connection),))
    unknown = set(columns) - {field.name for field in DailyStatistics._meta.concrete_fields}
    if unknown:
        raise ValueError(f"not a statistics column: {', '.join(sorted(unknown))}")
    conflict = ", ".join(quote(DailyStatistics._meta.get_field(f).column) for f in (_SERVICE, _DAY))
    counted = [quote(DailyStatistics._meta.get_field(column).column) for column in columns]
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(names))}) ON CONFLICT ({conflict}) DO UPDATE SET "
        + ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in counted)
    )
    return sql, slots


def daily_statistics_count(
    *,
    service_id,
    created_at: datetime,
    notification_type: str,
    status: str,
    key_type: str = KeyType.NORMAL,
) -> None:
    """Count a notification that has just reached `status`: a delivery in `*_delivered`, any
    failure in `*_failed`, `sending`/`pending` nowhere, a test key's never. Called by the status
    module (`sending/status.py`) inside the transaction of the change."""
    outcome = statistics_outcome(status)
    if outcome and key_type != KeyType.TEST:
        daily_statistics_increment(
            service_id=service_id,
            created_at=created_at,
            notification_type=notification_type,
            outcome=outcome,
        )


def daily_statistics_count_cte(*, changed: str) -> tuple[str, dict]:
    """`daily_statistics_count` as a PostgreSQL `WITH` clause, `counted`, for a statement whose
    clause `changed` returns the changed notification (`service_id`, `notification_type`,
    `status`, `created_at`, `key_type`: a test key's is not counted): an upsert (`ON CONFLICT
    … DO UPDATE`, which also makes a missing row), so the count commits with the change in the
    same statement."""
    return _count_sql(changed), {"sc_zone": timezone.get_current_timezone_name()}


@functools.cache
def _count_sql(changed: str) -> str:
    if not re.fullmatch(r"[a-z_]+", changed):
        raise ValueError(f"not a clause name: {changed!r}")
    n = quoted_columns(Notification)
    s = quoted_columns(DailyStatistics)
    stats_table = quoted_table(DailyStatistics)
    outcomes = {"delivered": [NotificationStatus.DELIVERED], "failed": FAILURE_STATUSES}
    counted_columns = {
        statistics_column(notification_type=kind, outcome=outcome): (kind, outcome)
        for kind in NotificationType.values
        for outcome in outcomes
    }
    adds = ", ".join(
        f"({n['notification_type']} = {sql_literal(kind)} "
        f"AND {n['status']} IN ({sql_literals(outcomes[outcome])}))::int"
        for kind, outcome in counted_columns.values()
    )
    increments = ", ".join(
        f"{s[column]} = {stats_table}.{s[column]} + EXCLUDED.{s[column]}"
        for column in counted_columns
    )
    requested = [c for c in STATISTICS_FIELDS if c not in counted_columns]
    countable = [NotificationStatus.DELIVERED, *FAILURE_STATUSES]
    return (
        f"counted AS (INSERT INTO {stats_table} ({s['service']}, {s['day']}, "  # noqa: S608
        f"{', '.join(s[c] for c in requested)}, {', '.join(s[c] for c in counted_columns)}) "
        f"SELECT {n['service']}, ({n['created_at']} AT TIME ZONE %(sc_zone)s)::date, "
        f"{', '.join('0' for _ in requested)}, {adds} FROM {changed} "
        f"WHERE {n['status']} IN ({sql_literals(countable)}) "
        f"AND {n['key_type']} <> {sql_literal(KeyType.TEST)} "
        f"ON CONFLICT ({s['service']}, {s['day']}) DO UPDATE SET {increments} RETURNING 1)"
    )


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
    """Each service's counts for a local day, recomputed from its notifications (a test key's
    are never counted)."""
    zone = timezone.get_current_timezone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    counts: dict[uuid.UUID, dict[str, int]] = {}
    rows = (
        Notification.objects.filter(created_at__gte=start, created_at__lt=end)
        .exclude(key_type=KeyType.TEST)
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
