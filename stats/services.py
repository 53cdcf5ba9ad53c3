"""The one write path of the daily statistics, and the one way a notification's status changes
after it was handed to a provider (contract sections 3 and 7)."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.db import transaction
from django.db.models import Count, F, Q
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

# Fields read to decide and count a status change; never the (possibly 100 kB) content.
_DECISION_FIELDS = (
    "id",
    "service_id",
    "notification_type",
    "status",
    "created_at",
    "sent_at",
    "sent_by",
    "provider_reference",
)

# A conditional update that finds the status changed under it reads again; each retry means
# another writer made progress, and a notification has at most three non-final steps.
_MAX_ATTEMPTS = 5


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
    day = timezone.localdate(created_at)
    column = statistics_column(notification_type=notification_type, outcome=outcome)
    row = DailyStatistics.objects.filter(service_id=service_id, day=day)
    if row.update(**{column: F(column) + 1}):
        return
    DailyStatistics.objects.bulk_create(
        [DailyStatistics(service_id=service_id, day=day)], ignore_conflicts=True
    )
    row.update(**{column: F(column) + 1})


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
    no count). A conditional update (filter(status=...).update(...)) so a race can't undo a
    final status. Returns the updated notification, or None when nothing changed (unknown id,
    already final, same status again).

    Never backwards: `sending` only from `created`, `pending` from `created` or `sending`, a
    final status from any of the three. The code and reason given replace the stored ones.
    Inside a caller's transaction it adds no savepoint: if it fails, the caller's whole
    transaction fails with it.
    """
    for wanted in (status, status_if_pending):
        if wanted is not None and wanted not in _MAY_MOVE_FROM:
            raise ValueError(f"a notification cannot be moved to {wanted!r}")
    # No savepoint of its own (saves two round trips per receipt): inside a caller's
    # transaction an error here spoils the whole transaction (Django refuses further
    # queries), so a half-made change can never commit.
    with transaction.atomic(savepoint=False):
        for _ in range(_MAX_ATTEMPTS):
            notification = (
                Notification.objects.filter(id=notification_id).only(*_DECISION_FIELDS).first()
            )
            if notification is None:
                return None
            current = notification.status
            target = (
                status_if_pending
                if status_if_pending and current == NotificationStatus.PENDING
                else status
            )
            if current not in _MAY_MOVE_FROM[target] or current == target:
                return None
            now = timezone.now()
            changed = Notification.objects.filter(id=notification_id, status=current).update(
                status=target,
                provider_status_code=provider_status_code[:20],
                provider_status_reason=provider_status_reason[:255],
                updated_at=now,
            )
            if changed:
                break
        else:
            return None
        outcome = statistics_outcome(target)
        if outcome:
            daily_statistics_increment(
                service_id=notification.service_id,
                created_at=notification.created_at,
                notification_type=notification.notification_type,
                outcome=outcome,
            )
    notification.status = NotificationStatus(target)
    notification.provider_status_code = provider_status_code[:20]
    notification.provider_status_reason = provider_status_reason[:255]
    notification.updated_at = now
    return notification


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
        )
        .order_by()
    )
    for row in rows:
        service = counts.setdefault(row["service_id"], dict.fromkeys(STATISTICS_FIELDS, 0))
        for outcome in ("requested", "delivered", "failed"):
            column = statistics_column(notification_type=row["notification_type"], outcome=outcome)
            service[column] += row[outcome]
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
