"""Sweeps that keep notifications moving: due retries, lost drain requests, silent `sending`.

**Lost drain requests.** The notifications table is the queue (`sending/engine.py`): a
notification waits there `created` with `queued_at` set until a drain claims it. django-q2's
Redis broker hands a task out once: a worker that dies with a drain request, a web process that
dies between its commit and its request, or a request that fails, leaves notifications waiting
with no drain on its way. The replay sweep (every minute) asks for the drain of each channel with
a notification waiting, free and due, queued more than `REPLAY_MARGIN_SECONDS` ago. Asking is
deduplicated (the channel's slot), so a deep but healthy backlog costs one cache round trip a
minute, and a request lost on the broker is made again once its slot has run out. A drain
killed mid-batch leaves its notifications leased: free again once the lease runs out, they are
claimed then, the unknown-outcome hold deciding whether a call in flight may be made again.
"""

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from sending.engine import deliveries_drain_request, notifications_free
from sending.models import Notification, NotificationStatus
from sending.status import notification_fail

now = timezone.now  # seam for tests

TIMEOUT_AFTER = timedelta(hours=72)
BATCH = 1000

Progress = Callable[[int], None]


def _queue_each(queryset, progress: Progress | None) -> int:
    """Put every notification of `queryset` in the queue (`queued_at` now), a batch at a time,
    oldest first, and ask for the drain of each channel they are on. `queryset` must leave out
    what was marked (`queued_at` set now), so each batch is the front of the same range again."""
    count = 0
    channels: set[str] = set()
    while batch := list(queryset.only("id", "notification_type")[:BATCH]):
        Notification.objects.filter(id__in=[n.id for n in batch]).update(queued_at=now())
        channels.update(notification.notification_type for notification in batch)
        count += len(batch)
        if progress:
            progress(count)
    deliveries_drain_request(channels)
    return count


def notifications_queue_due_retries(*, progress: Progress | None = None) -> int:
    """Queue every notification whose retry is due and not yet queued (scheduled every minute)."""
    current = now()
    due = Notification.objects.filter(
        status=NotificationStatus.CREATED, next_attempt_at__lte=current, queued_at__isnull=True
    ).filter(notifications_free(current))
    return _queue_each(due.order_by("next_attempt_at"), progress)


def notifications_replay(
    *, older_than: timedelta | None = None, progress: Progress | None = None
) -> int:
    """Ask for the drains of the notifications waiting with no drain on its way (see the
    module's comment): those queued, free and due, queued before `REPLAY_MARGIN_SECONDS` ago
    (with `older_than`, the command's, before that long ago); how many wait so. They keep their
    place in the queue."""
    current = now()
    margin = older_than or timedelta(seconds=settings.REPLAY_MARGIN_SECONDS)
    waiting = Notification.objects.filter(
        status=NotificationStatus.CREATED, queued_at__lt=current - margin
    ).filter(notifications_free(current))
    counts = dict(waiting.order_by().values_list("notification_type").annotate(count=Count("id")))
    deliveries_drain_request(counts)
    if progress:
        progress(sum(counts.values()))
    return sum(counts.values())


def notifications_requeue(*, queryset) -> int:
    """Queue again those of `queryset` still `created` and free (an operator's replay): not
    held by a worker and not waiting for a retry. The claim makes a duplicate harmless."""
    current = now()
    stuck = queryset.select_related(None).filter(status=NotificationStatus.CREATED)
    stuck = stuck.filter(
        notifications_free(current), Q(queued_at__isnull=True) | Q(queued_at__lt=current)
    )
    return _queue_each(stuck.order_by(), None)


def notifications_retry_now(*, queryset) -> int:
    """Queue at once those of `queryset` that wait for a planned retry (an operator's "retry
    now"): the retry becomes due now, keeping its count, and is queued as a due retry is."""
    current = now()
    waiting = queryset.select_related(None).filter(
        status=NotificationStatus.CREATED, next_attempt_at__gt=current, queued_at__isnull=True
    )
    waiting = waiting.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=current))
    ids = list(waiting.values_list("id", flat=True))
    Notification.objects.filter(id__in=ids, next_attempt_at__gt=current).update(
        next_attempt_at=current
    )
    due = Notification.objects.filter(id__in=ids, queued_at__isnull=True).filter(
        notifications_free(current)
    )
    return _queue_each(due.order_by("next_attempt_at"), None)


def notifications_timeout(
    *, older_than: timedelta = TIMEOUT_AFTER, progress: Progress | None = None
) -> int:
    """`sending`/`pending` with no final receipt `older_than` after it was handed over become
    `temporary-failure`. One `pending` before we knew it was sent (a receipt came first: the
    worker died after the provider took it) has no `sent_at`: it counts from its creation."""
    cut = now() - older_than
    silent = Notification.objects.filter(
        Q(sent_at__lt=cut) | Q(sent_at__isnull=True, created_at__lt=cut),
        status__in=(NotificationStatus.SENDING, NotificationStatus.PENDING),
    )
    reason = f"no delivery receipt within {older_than.total_seconds() / 3600:g} hours"
    return notifications_fail(
        queryset=silent,
        reason=reason,
        status=NotificationStatus.TEMPORARY_FAILURE,
        progress=progress,
    )


def notifications_fail(
    *,
    queryset,
    reason: str,
    status: NotificationStatus = NotificationStatus.TECHNICAL_FAILURE,
    progress: Progress | None = None,
) -> int:
    """Fail every notification of `queryset` that may still move (`notification_fail`); how
    many changed. Ids are read a batch at a time, each batch whole before any change: a change
    queues its service's callback drain once committed, and Django Q's ORM broker closes the
    database connection before it writes, which would cut a read still open on it."""
    ids = queryset.order_by("id").values_list("id", flat=True)
    count = 0
    last = None
    while batch := list((ids if last is None else ids.filter(id__gt=last))[:BATCH]):
        for notification_id in batch:
            changed = notification_fail(
                notification_id=notification_id, reason=reason, status=status
            )
            count += changed is not None
        last = batch[-1]
        if progress and len(batch) == BATCH:
            progress(count)
    return count
