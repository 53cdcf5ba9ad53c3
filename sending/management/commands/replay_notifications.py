from datetime import timedelta

from django.core.management.base import BaseCommand

from sending.sweeps import REPLAY_AFTER, notifications_replay


class Command(BaseCommand):
    help = "Re-queue notifications still `created` after --older-than minutes (default 60)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=int(REPLAY_AFTER.total_seconds() // 60),
            metavar="MINUTES",
            help="only notifications created more than this many minutes ago",
        )

    def handle(self, *args, older_than: int, **options):
        def progress(count: int) -> None:
            self.stdout.write(f"  … {count} re-queued")

        count = notifications_replay(older_than=timedelta(minutes=older_than), progress=progress)
        self.stdout.write(
            f"Re-queued {count} notification(s) created more than {older_than} minutes ago."
        )
