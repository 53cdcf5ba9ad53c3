from django.core.management.base import BaseCommand, CommandError

from notifyproject.masking import recipient_mask
from sending.guest_list import GuestListInvalid, guest_list_add
from sending.selectors import service_find


class Command(BaseCommand):
    help = (
        "Put a phone number or an email address on a service's guest list: the recipients its "
        "team keys may send to."
    )

    def add_arguments(self, parser):
        parser.add_argument("service", help="the service's name or id")
        parser.add_argument("recipient", help="a phone number or an email address")

    def handle(self, *args, service: str, recipient: str, **options):
        found = service_find(service)
        if found is None:
            raise CommandError(f"no service with the name or id {service!r}")
        try:
            row, created = guest_list_add(service=found, recipient=recipient)
        except GuestListInvalid as err:
            raise CommandError(str(err)) from None
        shown = recipient_mask(row.recipient)
        if created:
            self.stdout.write(f"Added {shown} to the guest list of {found.name!r}")
        else:
            self.stdout.write(f"{shown} is already on the guest list of {found.name!r}")
