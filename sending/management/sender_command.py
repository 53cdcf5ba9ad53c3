"""`add_sms_sender` and `add_email_reply_to`: one command shape for a service's senders."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sending.selectors import service_find


class AddSenderCommand(BaseCommand):
    """Adds one sender to the service named; prints a line, then the new row's id last."""

    what: str  # how the line names it: "SMS sender"
    value_name: str  # the argument, as `--help` shows it: TEXT
    value_help: str

    def add(self, *, service, value: str, is_default: bool):
        raise NotImplementedError

    def shown(self, added) -> str:
        return self.what

    def add_arguments(self, parser):
        parser.add_argument("service", help="the service's name or id")
        parser.add_argument("value", metavar=self.value_name, help=self.value_help)
        parser.add_argument("--default", action="store_true", help="use it when none is named")

    def handle(self, *args, service: str, value: str, default: bool, **options):
        found = service_find(service)
        if found is None:
            raise CommandError(f"no service with the name or id {service!r}")
        try:
            added = self.add(service=found, value=value, is_default=default)
        except ValidationError as err:
            raise CommandError(" ".join(err.messages)) from None
        default_text = " (the default)" if added.is_default else ""
        self.stdout.write(f"Added {self.shown(added)}{default_text} to {found.name!r}")
        self.stdout.write(str(added.id))
