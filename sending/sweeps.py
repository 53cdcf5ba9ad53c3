"""Sweeps that keep notifications moving: due retries, stranded `created`, silent `sending`."""

from collections.abc import Callable
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from sending.models import Notification, NotificationStatus
from sending.services import notification_queue_delivery
from sending.status import notification_fail

now = timezone.now  # seam for tests

REPLAY_AFTER = timedelta(minutes=60)
TIMEOUT_AFTER = timedelta(hours=72)
BATCH = 1000

Progress = Callable[[int], None]


def _free(current) -> Q:
    """Not held by a worker, and not waiting for a retry that is not yet due."""
    return (Q(lease_until__isnull=True) | Q(lease_until__lt=current)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=current)
    )


def _queue_each(queryset, progress: Progress | None) -> int:
    count = 0
    for notification in queryset.only("id", "notification_type").iterator(chunk_size=BATCH):
        notification_queue_delivery(notification=notification)
        count += 1
        if progress and count % BATCH == 0:
            progress(count)
    return count


def notifications_queue_due_retries(*, progress: Progress | None = None) -> int:
    """Queue every notification whose retry is due (scheduled every minute)."""
    current = now()
    due = Notification.objects.filter(
        status=NotificationStatus.CREATED, next_attempt_at__lte=current
    ).filter(_free(current))
    return _queue_each(due, progress)


def notifications_replay(
    *, older_than: timedelta = REPLAY_AFTER, progress: Progress | None = None
) -> int:
    """Re-queue `created` notifications older than `older_than` whose task was lost (a broker
    without delivery receipts, a worker that died). The claim makes a duplicate task harmless."""
    current = now()
    stranded = Notification.objects.filter(
        status=NotificationStatus.CREATED, created_at__lt=current - older_than
    ).filter(_free(current))
    return _queue_each(stranded, progress)


def notifications_requeue(*, queryset) -> int:
    """Queue again those of `queryset` still `created` and free (an operator's replay): not
    held by a worker and not waiting for a retry. The claim makes a duplicate harmless."""
    current = now()
    stuck = queryset.select_related(None).filter(status=NotificationStatus.CREATED)
    stuck = stuck.filter(_free(current))
    return _queue_each(stuck.order_by(), None)


def notifications_timeout(
    *, older_than: timedelta = TIMEOUT_AFTER, progress: Progress | None = None
) -> int:
    """`sending`/`pending` with no final receipt after `older_than` become `temporary-failure`."""
    silent = Notification.objects.filter(
        status__in=(NotificationStatus.SENDING, NotificationStatus.PENDING),
        sent_at__lt=now() - older_than,
    )
    reason = f"no delivery receipt within {older_than.total_seconds() / 3600:g} hours"
    count = 0
    for notification_id in silent.values_list("id", flat=True).iterator(chunk_size=BATCH):
        changed = notification_fail(
            notification_id=notification_id,
            reason=reason,
            status=NotificationStatus.TEMPORARY_FAILURE,
        )
        count += changed is not None
        if progress and count and count % BATCH == 0:
            progress(count)
    return count
