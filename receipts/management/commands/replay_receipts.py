from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from receipts.inbox import receipts_drain
from receipts.models import Receipt, ReceiptProvider
from receipts.selectors import receipt_list_to_replay


def moment(value: str) -> datetime:
    """`2026-11-28` (local midnight) or an ISO 8601 time (local time when it has no offset)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since: expected YYYY-MM-DD or an ISO 8601 time, got {value!r}"
        ) from None
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time.min)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = (
        "Process again the stored receipts that failed or were never processed. Safe to repeat: "
        "a receipt changes a notification and its statistics at most once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", type=moment, help="received at or after (YYYY-MM-DD or ISO time)"
        )
        parser.add_argument("--provider", choices=ReceiptProvider.values)
        parser.add_argument(
            "--rejected",
            action="store_true",
            help="also receipts that were refused (400), e.g. after a status was added to a map",
        )
        parser.add_argument(
            "--given-up",
            action="store_true",
            help=f"also receipts given up after failing {Receipt.MAX_ATTEMPTS} times",
        )
        parser.add_argument(
            "--settle-seconds",
            type=int,
            default=60,
            help="leave alone receipts younger than this, which a request may be processing now",
        )

    def handle(self, *args, since, provider, rejected, given_up, settle_seconds, **options):
        receipts = receipt_list_to_replay(
            received_before=timezone.now() - timedelta(seconds=settle_seconds),
            since=since,
            provider=provider,
            include_rejected=rejected,
            include_given_up=given_up,
        )
        total = receipts.count()
        self.stdout.write(f"{total} receipt(s) to replay")
        done = 0

        def progress(count: int) -> None:
            nonlocal done
            done += count
            self.stdout.write(f"  {done}/{total} replayed")

        # The inbox drain itself, over the receipts chosen.
        states = receipts_drain(receipts=receipts, progress=progress)
        summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"Replayed {sum(states.values())} receipt(s): {summary or 'nothing to do'}"
            )
        )
