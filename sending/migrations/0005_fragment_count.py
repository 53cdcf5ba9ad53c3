from django.db import migrations, models

from sending.fragments import sms_fragment_count


def count_existing_texts(apps, schema_editor):
    """Texts accepted before parts were counted get their count, so every text carries one."""
    Notification = apps.get_model("sending", "Notification")
    texts = Notification.objects.filter(notification_type="sms", fragment_count__isnull=True)
    batch = []
    for notification in texts.only("id", "content").iterator(chunk_size=2000):
        notification.fragment_count = sms_fragment_count(notification.content)
        batch.append(notification)
        if len(batch) == 2000:
            Notification.objects.bulk_update(batch, ["fragment_count"])
            batch = []
    Notification.objects.bulk_update(batch, ["fragment_count"])


class Migration(migrations.Migration):

    dependencies = [
        ('sending', '0004_schedules'),
    ]

    operations = [
        migrations.AddField(
            model_name='notification',
            name='fragment_count',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(count_existing_texts, migrations.RunPython.noop),
    ]
