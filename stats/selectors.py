"""Reading the daily statistics."""

from datetime import date, timedelta

from sending.models import Service
from stats.models import STATISTICS_FIELDS, DailyStatistics


def daily_statistics_list(*, service: Service, start: date, end: date) -> list[dict]:
    """One entry per day from `start` to `end` inclusive, oldest first; zeros for a day
    without a row, so a caller can chart the answer as it is."""
    stored = {
        row["day"]: row
        for row in DailyStatistics.objects.filter(
            service=service, day__gte=start, day__lte=end
        ).values("day", *STATISTICS_FIELDS)
    }
    days = (start + timedelta(days=n) for n in range((end - start).days + 1))
    return [stored.get(day, {"day": day, **dict.fromkeys(STATISTICS_FIELDS, 0)}) for day in days]
