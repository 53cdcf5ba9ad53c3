"""`manage.py qcluster`: django-q2's command, running the delivery cluster and, beside it, the
status callbacks' cluster (notifyproject/cluster.py), and the receipts' queue in a thread of the
master, with processes that die with the master."""

import gc

from django.conf import settings
from django.utils.module_loading import autodiscover_modules
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand

from notifyproject.cluster import CallbacksCluster, QueueThread, orphan_guard_install


class Command(DjangoQCommand):
    help = (
        "Starts the Django Q delivery cluster, the status callbacks' cluster beside it and the "
        "receipts' queue in a thread."
    )

    def handle(self, *args, **options):
        orphan_guard_install()
        settings.SECRET_KEY  # noqa: B018  (django-q2's check: tasks are signed with it)
        run_once = options.get("run_once", False)
        # The callbacks cluster is this command's child; it starts none of its own.
        callbacks = receipts = None
        if not settings.Q_CALLBACKS_CLUSTER and not run_once:
            callbacks = CallbacksCluster(cwd=str(settings.BASE_DIR))
            callbacks.start()
        workers_share()
        try:
            cluster = Cluster()
            cluster.start()
            if run_once:
                cluster.stop()
            elif cluster.sentinel is not None:
                if not settings.Q_CALLBACKS_CLUSTER:
                    # After the sentinel's fork: no process is forked from a running drain.
                    receipts = QueueThread(settings.RECEIPT_QUEUE)
                    receipts.start()
                cluster.sentinel.join()  # until a signal stops the cluster (its own handler)
        finally:
            if receipts is not None:
                receipts.stop()
            if callbacks is not None:
                callbacks.stop()


def workers_share() -> None:
    """Load what the workers run before django-q forks them, so they share it: every app's
    `tasks` module and what it imports (the delivery engine, requests, boto3: about 9 MB a
    process), which a worker would otherwise import into memory of its own at its first task;
    then `gc.freeze()`, so a worker's garbage collections leave the inherited objects (and the
    pages they are on) alone. What is frozen is never collected: the modules and settings,
    alive for the whole process anyway."""
    autodiscover_modules("tasks")
    gc.freeze()
