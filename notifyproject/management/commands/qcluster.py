"""`manage.py qcluster`: django-q2's command, with processes that die with the master."""

from django_q.management.commands.qcluster import Command as DjangoQCommand

from notifyproject.cluster import orphan_guard_install


class Command(DjangoQCommand):
    def handle(self, *args, **options):
        orphan_guard_install()
        super().handle(*args, **options)
