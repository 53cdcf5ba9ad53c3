from django.core.management.base import BaseCommand
from django_q.models import Schedule

from sending.schedules import SCHEDULES, schedules_ensure


class Command(BaseCommand):
    help = "Create or correct the Django Q schedules (idempotent)."

    def handle(self, *args, **options):
        created = schedules_ensure(Schedule)
        for name, func, minutes in SCHEDULES:
            mark = "created" if name in created else "ok"
            self.stdout.write(f"{mark:8} every {minutes:>4} min  {name} ({func})")
