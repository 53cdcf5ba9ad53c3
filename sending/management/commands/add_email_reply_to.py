from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sending.selectors import service_find
from sending.senders import email_reply_to_add


class Command(BaseCommand):
    help = "Add an email reply-to address to a service; prints its id (email_reply_to_id) last."

    def add_arguments(self, parser):
        parser.add_argument("service", help="the service's name or id")
        parser.add_argument("address", help="the Reply-To address")
        parser.add_argument("--default", action="store_true", help="use it when none is named")

    def handle(self, *args, service: str, address: str, default: bool, **options):
        found = service_find(service)
        if found is None:
            raise CommandError(f"no service with the name or id {service!r}")
        try:
            reply_to = email_reply_to_add(service=found, email_address=address, is_default=default)
        except ValidationError as err:
            raise CommandError(" ".join(err.messages)) from None
        default_text = " (the default)" if reply_to.is_default else ""
        self.stdout.write(f"Added reply-to address{default_text} to {found.name!r}")
        self.stdout.write(str(reply_to.id))
