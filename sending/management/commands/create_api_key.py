from django.core.management.base import BaseCommand, CommandError

from sending.models import ApiKey, Service


class Command(BaseCommand):
    help = "Create a service if needed and print a new API key for it, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("service_name")

    def handle(self, *args, service_name: str, **options):
        name = service_name.strip()
        if not name:
            raise CommandError("service name must not be empty")
        service, created = Service.objects.get_or_create(name=name)
        key, secret = ApiKey.issue(service)
        self.stdout.write(
            f"{'Created' if created else 'Found'} service {service.name!r} ({service.id}); "
            f"new API key {key.prefix}… (shown once, only its hash is kept):"
        )
        self.stdout.write(secret)
