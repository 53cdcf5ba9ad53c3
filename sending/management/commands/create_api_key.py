from django.core.management.base import BaseCommand, CommandError

from sending.models import ApiKey, KeyType, Service


class Command(BaseCommand):
    help = (
        "Create a service if needed and print a new API key for it, alone on the last line, in "
        "GOV.UK Notify's form {key name}-{service id}-{secret}."
    )

    def add_arguments(self, parser):
        parser.add_argument("service_name")
        parser.add_argument("--name", default="", help="the key's name (default: the service's)")
        parser.add_argument(
            "--type",
            dest="key_type",
            choices=KeyType.values,
            default=KeyType.NORMAL,
            help="normal: sends to anyone; team: only to the service's guest list; test: "
            "sends nothing, simulates each receipt (default: normal)",
        )

    def handle(self, *args, service_name: str, name: str, key_type: str, **options):
        service_name = service_name.strip()
        if not service_name:
            raise CommandError("service name must not be empty")
        service, created = Service.objects.get_or_create(name=service_name)
        key, key_string = ApiKey.issue(service, name=name, key_type=key_type)
        self.stdout.write(
            f"{'Created' if created else 'Found'} service {service.name!r} ({service.id}); "
            f"new {key.key_type} API key {key.name!r} (shown once: its secret is kept encrypted, "
            "the key hashed). It is a bearer key for /notifications and, with the official "
            "clients, signs /v2 tokens:"
        )
        self.stdout.write(key_string)
