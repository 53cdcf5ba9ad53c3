from django.core.management import call_command
from django.db import migrations

from sending.providers import providers_seed

def seed(apps, schema_editor):
    providers_seed(
        apps.get_model("sending", "ProviderDetails"), apps.get_model("sending", "ProviderDetailsHistory")
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
