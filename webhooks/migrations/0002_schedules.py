from django.db import migrations

from sending.schedules import schedules_ensure


def create(apps, schema_editor):
    schedules_ensure(apps.get_model("django_q", "Schedule"))


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("sending", "0004_schedules"),
    ]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
