from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sending.models import NotificationType
from sending.placeholders import placeholder_names
from sending.selectors import service_find
from sending.templates import template_create


class Command(BaseCommand):
    help = "Create a template for a service; prints its id alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("service", help="the service's name or id")
        parser.add_argument("--type", required=True, choices=NotificationType.values)
        parser.add_argument("--name", required=True)
        parser.add_argument("--subject", default="", help="emails only")
        parser.add_argument("--body", required=True, help="with ((placeholders)) to fill")

    def handle(self, *args, service: str, type: str, name: str, subject: str, body: str, **opts):
        found = service_find(service)
        if found is None:
            raise CommandError(f"no service with the name or id {service!r}")
        try:
            template = template_create(
                service=found,
                template_type=type,
                name=name,
                subject=subject,
                body=body,
                created_by="manage.py create_template",
            )
        except ValidationError as err:
            problems = (f"{k} {' '.join(v)}" for k, v in err.message_dict.items())
            raise CommandError("; ".join(problems)) from None
        fields = ", ".join(placeholder_names(template.subject, template.body)) or "none"
        self.stdout.write(
            f"Created {type} template {name!r} version 1 for {found.name!r}; placeholders: {fields}"
        )
        self.stdout.write(str(template.id))
