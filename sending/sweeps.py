"""Sweeps that keep notifications moving: due retries, lost tasks, silent `sending`.

**Lost tasks.** django-q2's Redis broker hands a task out once: a pusher or worker that dies
with it, a web process that dies between its commit and the push, or a push that fails, leaves a
`created` notification nobody will send. Each notification carries `queued_at`, the moment its
task was (last) meant for the broker; the replay sweep (every minute) queues again each `created`
notification that no worker holds, that waits for no planned retry, and whose `queued_at` is
older than the oldest task still in the broker, less `REPLAY_MARGIN_SECONDS`. The broker is first
in, first out, so such a task has left the broker; the margin covers the few seconds a task
spends in a pusher's hands before a worker claims it. A deep but healthy backlog is therefore
never queued twice over: however slowly it drains, its tasks are still in the broker, younger
than its head. What the sweep reads is one range of a partial index (`notification_queued`:
`created` with `queued_at` set) up to that moment, which holds only tasks taken in the last
moments plus the lost ones; a notification waiting for a retry has no `queued_at`. A duplicate
task is harmless anyway: the claim lets only one worker send.
"""

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import get_broker

from notifyproject.broker import broker_oldest_queued_at
from sending.models import Notification, NotificationStatus
from sending.services import notification_queue_delivery
from sending.status import notification_fail

now = timezone.now  # seam for tests

TIMEOUT_AFTER = timedelta(hours=72)
BATCH = 1000

Progress = Callable[[int], None]


def _free(current) -> Q:
    """Not held by a worker, and not waiting for a retry that is not yet due."""
    return (Q(lease_until__isnull=True) | Q(lease_until__lt=current)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=current)
    )


def _queue_each(queryset, progress: Progress | None) -> int:
    """Queue every notification of `queryset`, a batch at a time, marking each `queued_at` first
    (so a push that fails is seen by the next replay), oldest first. `queryset` must leave out
    what was marked (`queued_at` set now), so each batch is the front of the same range again."""
    count = 0
    while batch := list(queryset.only("id", "notification_type")[:BATCH]):
        Notification.objects.filter(id__in=[n.id for n in batch]).update(queued_at=now())
        for notification in batch:
            notification_queue_delivery(notification=notification)
        count += len(batch)
        if progress:
            progress(count)
    return count


def notifications_queue_due_retries(*, progress: Progress | None = None) -> int:
    """Queue every notification whose retry is due and not yet queued (scheduled every minute)."""
    current = now()
    due = Notification.objects.filter(
        status=NotificationStatus.CREATED, next_attempt_at__lte=current, queued_at__isnull=True
    ).filter(_free(current))
    return _queue_each(due.order_by("next_attempt_at"), progress)


def notifications_replay(
    *, older_than: timedelta | None = None, progress: Progress | None = None
) -> int:
    """Queue again the `created` notifications whose task was lost (see the module's comment);
    with `older_than` (the command), every one queued longer ago than that instead."""
    current = now()
    if older_than is None:
        head = broker_oldest_queued_at(get_broker())
        cut = min(head or current, current) - timedelta(seconds=settings.REPLAY_MARGIN_SECONDS)
    else:
        cut = current - older_than
    lost = Notification.objects.filter(status=NotificationStatus.CREATED, queued_at__lt=cut).filter(
        _free(current)
    )
    return _queue_each(lost.order_by("queued_at"), progress)


def notifications_requeue(*, queryset) -> int:
    """Queue again those of `queryset` still `created` and free (an operator's replay): not
    held by a worker and not waiting for a retry. The claim makes a duplicate harmless."""
    current = now()
    stuck = queryset.select_related(None).filter(status=NotificationStatus.CREATED)
    stuck = stuck.filter(_free(current), Q(queued_at__isnull=True) | Q(queued_at__lt=current))
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
    due = Notification.objects.filter(id__in=ids, queued_at__isnull=True).filter(_free(current))
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
