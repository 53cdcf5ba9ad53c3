from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sending.selectors import service_find
from sending.senders import sms_sender_add


class Command(BaseCommand):
    help = "Add an SMS sender to a service; prints its id (the API's sms_sender_id) last."

    def add_arguments(self, parser):
        parser.add_argument("service", help="the service's name or id")
        parser.add_argument("text", help="what texts show as their sender")
        parser.add_argument("--default", action="store_true", help="use it when none is named")

    def handle(self, *args, service: str, text: str, default: bool, **options):
        found = service_find(service)
        if found is None:
            raise CommandError(f"no service with the name or id {service!r}")
        try:
            sender = sms_sender_add(service=found, sms_sender=text, is_default=default)
        except ValidationError as err:
            raise CommandError(" ".join(err.messages)) from None
        default_text = " (the default)" if sender.is_default else ""
        self.stdout.write(f"Added SMS sender {sender.sms_sender!r}{default_text} to {found.name!r}")
        self.stdout.write(str(sender.id))
