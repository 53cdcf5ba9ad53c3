"""The Django Q brokers we run: django-q2's own, counting the tasks the workers can't read and
telling when the oldest task they hold was queued.

django-q2 signs every task with SECRET_KEY. A worker whose key differs from the web process's
drops each task it is handed ("Failed to push task to queue") and calls the broker's `fail`;
nothing else calls it. We count those in the shared cache, so /healthz (another process) can say
so, and in statsd. The notifications behind them are not lost: the replay sweep, running in the
workers with their own key, queues them again (sending/sweeps.py).
"""

import functools
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django_q.brokers import get_broker, orm, redis_broker
from django_q.signing import BadSignature, SignedPackage

from notifyproject import metrics

logger = logging.getLogger(__name__)

UNREADABLE_COUNT = "tasks:unreadable:count"
UNREADABLE_LAST = "tasks:unreadable:last"


def task_unreadable_record() -> None:
    cache.add(UNREADABLE_COUNT, 0, timeout=None)
    cache.incr(UNREADABLE_COUNT)
    cache.set(UNREADABLE_LAST, timezone.now(), timeout=None)
    metrics.incr("tasks.unreadable")
    logger.error("task unreadable: dropped by the broker (is SECRET_KEY the same everywhere?)")


def tasks_unreadable() -> tuple[int, object]:
    """How many tasks the workers could not read, and when the last one came (or None)."""
    found = cache.get_many([UNREADABLE_COUNT, UNREADABLE_LAST])
    return found.get(UNREADABLE_COUNT, 0), found.get(UNREADABLE_LAST)


def broker_oldest_queued_at(broker) -> datetime | None:
    """When the oldest task still in the broker was queued; None when it holds none.

    Every task queued before it has left the broker (taken by a pusher): on Redis the list is
    first in, first out; the ORM broker keeps a task until it is acknowledged. A head we can't
    read (another SECRET_KEY) tells nothing, so it counts as none.
    """
    payload = broker.oldest_payload()
    if payload is None:
        return None
    try:
        return SignedPackage.loads(payload)["started"]
    except (BadSignature, KeyError, TypeError):
        return None


class Redis(redis_broker.Redis):
    def fail(self, task_id):
        task_unreadable_record()
        super().fail(task_id)

    def oldest_payload(self) -> bytes | None:
        return self.connection.lindex(self.list_key, 0)


class ORM(orm.ORM):
    def fail(self, task_id):
        task_unreadable_record()
        super().fail(task_id)

    def oldest_payload(self) -> str | None:
        rows = self.get_connection().filter(key=self.list_key).order_by("id")
        return rows.values_list("payload", flat=True).first()


# How long a task's claim on its work lasts (a notification's lease, a drain's slot and its
# callbacks' lease): longer than a task may run (django-q kills it at `timeout`), so a live task
# keeps what it claimed, and a dead one's runs out soon after.
TASK_LEASE = timedelta(seconds=settings.Q_CLUSTER["timeout"] + 30)


@functools.cache
def broker_handle(queue: str | None = None):
    """The process's one broker per queue (None: the main cluster's; the callbacks cluster has
    its own, `settings.CALLBACK_QUEUE`): django-q makes a new one (for Redis, a new connection)
    on every `async_task` unless one is passed in."""
    return get_broker(queue)
