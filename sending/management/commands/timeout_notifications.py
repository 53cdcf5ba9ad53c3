from datetime import timedelta

from django.core.management.base import BaseCommand

from sending.sweeps import TIMEOUT_AFTER, notifications_timeout


class Command(BaseCommand):
    help = "Turn `sending`/`pending` older than --older-than hours (72) into temporary-failure."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=int(TIMEOUT_AFTER.total_seconds() // 3600),
            metavar="HOURS",
        )

    def handle(self, *args, older_than: int, **options):
        def progress(count: int) -> None:
            self.stdout.write(f"  … {count} timed out")

        count = notifications_timeout(older_than=timedelta(hours=older_than), progress=progress)
        self.stdout.write(
            f"Timed out {count} notification(s) sent more than {older_than} hours ago "
            "with no final receipt: now temporary-failure."
        )
