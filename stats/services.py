"""The daily statistics (contract section 7): the one write path of their counts (called when a
notification is accepted and when its status changes, both registered with `sending/` in
settings), the recount and the rebuild."""

import functools
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

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


# What counts as delivered and as failed: the one place it is written (the count as statuses
# change, and the recount).
OUTCOME_STATUSES: dict[Outcome, tuple[str, ...]] = {
    "delivered": (NotificationStatus.DELIVERED,),
    "failed": FAILURE_STATUSES,
}


def statistics_outcome(status: str) -> Outcome | None:
    """The column a notification in `status` is counted in, besides `*_requested`."""
    for outcome, statuses in OUTCOME_STATUSES.items():
        if status in statuses:
            return outcome
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


def daily_statistics_count_moves(moves) -> None:
    """Registered with the status module (`settings.STATUS_CHANGE_HANDLERS`): count the
    notifications that have just reached a status, in the transaction of the change (a delivery
    in `*_delivered`, any failure in `*_failed`, `sending`/`pending` nowhere). One upsert per
    service and day, whatever the size of the batch. A test key's are never counted."""
    counts: dict[tuple, Counter] = {}
    for move in moves:
        outcome = statistics_outcome(move.status)
        if outcome is None or move.notification.key_type == KeyType.TEST:
            continue
        notification = move.notification
        key = (notification.service_id, timezone.localdate(notification.created_at))
        column = statistics_column(
            notification_type=notification.notification_type, outcome=outcome
        )
        counts.setdefault(key, Counter())[column] += 1
    for (service_id, day), day_counts in counts.items():
        daily_statistics_add(service_id=service_id, day=day, counts=dict(day_counts))


def daily_statistics_count_accepted(notifications) -> None:
    """Registered with `sending/` (`settings.NOTIFICATIONS_ACCEPTED_HANDLERS`): count newly
    accepted notifications (a text's parts too; a test key's never), in their transaction; one
    upsert per service and day."""
    counts: dict[tuple, Counter] = {}
    for notification in notifications:
        if notification.key_type == KeyType.TEST:
            continue
        key = (notification.service_id, timezone.localdate(notification.created_at))
        day = counts.setdefault(key, Counter())
        kind = notification.notification_type
        day[statistics_column(notification_type=kind, outcome="requested")] += 1
        if notification.notification_type == NotificationType.SMS:
            day["sms_fragments"] += notification.fragment_count or 0
    for (service_id, day), day_counts in counts.items():
        daily_statistics_add(service_id=service_id, day=day, counts=dict(day_counts))


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
            **{
                outcome: Count("id", filter=Q(status__in=statuses))
                for outcome, statuses in OUTCOME_STATUSES.items()
            },
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
