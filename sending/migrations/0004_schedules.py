from django.db import migrations

from sending.schedules import schedules_ensure


def create(apps, schema_editor):
    schedules_ensure(apps.get_model("django_q", "Schedule"))


class Migration(migrations.Migration):
    dependencies = [
        ("sending", "0003_delivery_bookkeeping"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
