from datetime import timedelta

from django.core.management.base import BaseCommand

from sending.sweeps import notifications_replay


class Command(BaseCommand):
    help = (
        "Ask for the drain of `created` notifications waiting with none on its way (what the "
        "schedule does every minute), or with --older-than of those queued longer ago than that."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="MINUTES",
            help="every `created` notification queued more than this many minutes ago",
        )

    def handle(self, *args, older_than: int | None, **options):
        def progress(count: int) -> None:
            self.stdout.write(f"  … {count} re-queued")

        if older_than is None:
            count = notifications_replay(progress=progress)
            self.stdout.write(f"Drain asked for: {count} notification(s) waiting with none coming.")
            return
        count = notifications_replay(older_than=timedelta(minutes=older_than), progress=progress)
        self.stdout.write(
            f"Drain asked for: {count} notification(s) queued more than {older_than} minutes ago."
        )
