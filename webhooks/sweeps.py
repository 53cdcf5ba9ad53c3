"""The per-minute sweep and `replay_callbacks`: events left behind are queued again."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from webhooks.models import UNFINISHED_STATES, CallbackEvent, CallbackState
from webhooks.outbox import callback_drain_request

now = timezone.now  # seam for tests

# A new event's own task is normally on its way; the sweep leaves it this long.
SETTLE = timedelta(seconds=10)
BATCH = 1000

Progress = Callable[[int, int], None]


def callback_events_queue_due(*, limit: int = BATCH) -> int:
    """Scheduled every minute: ask for a drain for each service with a due event (a retry
    whose time has come, an event whose drain was lost, a `sending` one whose worker died).
    Returns how many drains were queued (a service whose drain runs already queues none)."""
    current = now()
    services = (
        CallbackEvent.objects.filter(state__in=UNFINISHED_STATES)
        .filter(
            Q(state=CallbackState.SENDING, next_attempt_at__lt=current)
            | Q(
                state__in=(CallbackState.PENDING, CallbackState.RETRYING),
                next_attempt_at__lte=current - SETTLE,
            )
        )
        .order_by()
        .values_list("service_id", flat=True)
        .distinct()[:limit]
    )
    return sum(callback_drain_request(service_id=service_id) for service_id in services)


def callback_events_replay(
    *,
    ids: list | None = None,
    service_id=None,
    states: tuple[str, ...] = (CallbackState.GIVEN_UP,),
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """`replay_callbacks`: make the chosen events due now with a fresh set of attempts, and
    ask for their services' drains. A delivered event sent again keeps its `webhook-id`, for
    the receiver to drop."""
    events = CallbackEvent.objects.filter(state__in=states)
    if ids is not None:
        events = events.filter(id__in=ids)
    if service_id is not None:
        events = events.filter(service_id=service_id)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    chosen = list(events.order_by("created_at").values_list("id", "service_id"))
    for done, start in enumerate(range(0, len(chosen), BATCH), start=1):
        chunk = chosen[start : start + BATCH]
        current = now()
        CallbackEvent.objects.filter(id__in=[id_ for id_, _ in chunk], state__in=states).update(
            state=CallbackState.PENDING, attempts=0, next_attempt_at=current, updated_at=current
        )
        for service_id in {service_id for _, service_id in chunk}:
            callback_drain_request(service_id=service_id)
        if progress:
            progress(min(done * BATCH, len(chosen)), len(chosen))
    return len(chosen)
