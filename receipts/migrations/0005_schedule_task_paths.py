"""The receipt schedules' tasks moved with the module (`callbacks.tasks` -> `receipts.tasks`): a
deployed database's Schedule rows still name the old path, which no longer imports, so they are
rewritten here rather than kept working by an alias package."""

from django.db import migrations

OLD, NEW = "callbacks.tasks.", "receipts.tasks."


def schedule_paths_move(schedule_model, old: str, new: str) -> None:
    for schedule in schedule_model.objects.filter(func__startswith=old):
        schedule.func = new + schedule.func.removeprefix(old)
        schedule.save(update_fields=["func"])


def forwards(apps, schema_editor):
    schedule_paths_move(apps.get_model("django_q", "Schedule"), OLD, NEW)


def backwards(apps, schema_editor):
    schedule_paths_move(apps.get_model("django_q", "Schedule"), NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("callbacks", "0004_receipt_ignored"),
        ("sending", "0004_schedules"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
