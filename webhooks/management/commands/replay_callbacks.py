import uuid
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sending.models import Service
from webhooks.models import CallbackState
from webhooks.sweeps import callback_events_replay


def _when(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"not a date and time: {value!r} (e.g. 2026-12-01T09:00)")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def _service_id(name_or_id: str):
    try:
        services = Service.objects.filter(id=uuid.UUID(name_or_id))
    except ValueError:
        services = Service.objects.filter(name=name_or_id)
    service_id = services.values_list("id", flat=True).first()
    if service_id is None:
        raise CommandError(f"no such service: {name_or_id!r}")
    return service_id


class Command(BaseCommand):
    help = (
        "Send status callbacks again: by default every given-up one. Each keeps its webhook-id "
        "(receivers drop duplicates) and gets a fresh set of attempts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--service", help="service name or id")
        parser.add_argument(
            "--state",
            action="append",
            choices=[s.value for s in CallbackState],
            help=f"repeatable; default {CallbackState.GIVEN_UP}",
        )
        parser.add_argument("--since", type=_when, help="events created at or after")
        parser.add_argument("--until", type=_when, help="events created before")

    def handle(self, *args, **options):
        service_id = None
        if options["service"]:
            service_id = _service_id(options["service"])
        count = callback_events_replay(
            service_id=service_id,
            states=tuple(options["state"] or [CallbackState.GIVEN_UP]),
            since=options["since"],
            until=options["until"],
            progress=lambda done, total: self.stdout.write(f"queued {done} of {total}"),
        )
        self.stdout.write(f"Queued {count} callback(s) to send again.")
