from django.core.management.base import BaseCommand, CommandError

from receipts.inbound_numbers import InboundNumberTaken, inbound_number_set
from sending.selectors import service_find


class Command(BaseCommand):
    help = (
        "Give a service the number people text it on (a leading 44 is kept as 0; short codes "
        "such as 40604 as given). One service per number; a service's previous number is let go."
    )

    def add_arguments(self, parser):
        parser.add_argument("service", help="the service's name or id")
        parser.add_argument("number")

    def handle(self, *args, service: str, number: str, **options):
        found = service_find(service)
        if found is None:
            raise CommandError(f"no service with the name or id {service!r}")
        try:
            row = inbound_number_set(service=found, number=number)
        except InboundNumberTaken as err:
            raise CommandError(str(err)) from None
        self.stdout.write(f"Inbound number of {found.name!r}: {row.number}")
