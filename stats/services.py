"""The one write path of the daily statistics."""

from datetime import datetime
from typing import Literal

from django.db.models import F
from django.utils import timezone

from sending.models import NotificationType
from stats.models import DailyStatistics

Outcome = Literal["requested", "delivered", "failed"]


def statistics_column(*, notification_type: str, outcome: Outcome) -> str:
    prefix = "sms" if notification_type == NotificationType.SMS else "emails"
    return f"{prefix}_{outcome}"


def daily_statistics_increment(
    *, service_id, created_at: datetime, notification_type: str, outcome: Outcome
) -> None:
    """Count one outcome on the service's row for the local day of creation.

    Call it inside the transaction that changes the notification, so the two land together.
    The row is made if missing (racing makers are fine: the conflict is ignored) and counted
    with an `F()` increment, so concurrent writers never lose a count.
    """
    day = timezone.localdate(created_at)
    column = statistics_column(notification_type=notification_type, outcome=outcome)
    DailyStatistics.objects.bulk_create(
        [DailyStatistics(service_id=service_id, day=day)], ignore_conflicts=True
    )
    DailyStatistics.objects.filter(service_id=service_id, day=day).update(**{column: F(column) + 1})
