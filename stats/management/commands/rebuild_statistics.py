from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sending.models import Service
from stats.services import daily_statistics_rebuild

DEFAULT_DAYS = 7


def day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"expected a day as YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = (
        "Recompute the daily statistics rows of a range of days from the notifications, "
        "and report every row that had to be corrected."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--start", type=day, help=f"first day (default: {DEFAULT_DAYS - 1} days before --end)"
        )
        parser.add_argument("--end", type=day, help="last day, included (default: today)")

    def handle(self, *args, start, end, **options):
        end = end or timezone.localdate()
        start = start or end - timedelta(days=DEFAULT_DAYS - 1)
        if end < start:
            raise CommandError("--end must not be before --start")
        days = (end - start).days + 1
        names = dict(Service.objects.values_list("id", "name"))
        checked = corrected = 0
        for n in range(days):
            current = start + timedelta(days=n)
            rows, corrections = daily_statistics_rebuild(day=current)
            checked += rows
            corrected += len(corrections)
            for correction in corrections:
                service = names.get(correction.service_id, correction.service_id)
                self.stdout.write(
                    self.style.WARNING(f"  corrected {current} {service}: {correction.changes()}")
                )
            self.stdout.write(
                f"{current}: {rows} row(s), {len(corrections)} corrected ({n + 1}/{days})"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Checked {checked} row(s) over {days} day(s); corrected {corrected}."
            )
        )
