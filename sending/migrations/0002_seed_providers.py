from django.core.management import call_command
from django.db import migrations

PROVIDERS = [
    # name, display name, type, priority, international
    ("firetext", "Firetext", "sms", 50, True),
    ("mmg", "MMG", "sms", 50, True),
    ("ses", "AWS SES", "email", 100, False),
]


def seed(apps, schema_editor):
    ProviderDetails = apps.get_model("sending", "ProviderDetails")
    History = apps.get_model("sending", "ProviderDetailsHistory")
    for name, display_name, kind, priority, international in PROVIDERS:
        provider, created = ProviderDetails.objects.get_or_create(
            name=name,
            defaults={
                "display_name": display_name,
                "notification_type": kind,
                "priority": priority,
                "supports_international": international,
            },
        )
        if created:
            History.objects.create(
                provider=provider,
                priority=priority,
                active=True,
                changed_by="migration",
                reason="initial provider set-up",
            )


def create_cache_table(apps, schema_editor):
    # The database cache (rate limits, Django Q monitor) when Redis is not configured.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("sending", "0001_initial")]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
