"""The per-minute sweep and `replay_callbacks`: events left behind are queued again."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from webhooks import delivery
from webhooks.models import UNFINISHED_STATES, CallbackEvent, CallbackState
from webhooks.outbox import callback_event_queue

now = timezone.now  # seam for tests

# A new event's own task is normally on its way; the sweep leaves it this long.
SETTLE = timedelta(seconds=10)
BATCH = 1000

Progress = Callable[[int, int], None]


def callback_events_queue_due(*, limit: int = BATCH) -> int:
    """Scheduled every minute: queue each due event (a retry whose time has come, an event
    whose task was lost, a `sending` one whose worker died), at most
    `IN_FLIGHT_PER_SERVICE` a service (the attempt that ends queues the next)."""
    current = now()
    due = (
        CallbackEvent.objects.filter(state__in=UNFINISHED_STATES)
        .filter(
            Q(state=CallbackState.SENDING, next_attempt_at__lt=current)
            | Q(
                state__in=(CallbackState.PENDING, CallbackState.RETRYING),
                next_attempt_at__lte=current - SETTLE,
            )
        )
        .order_by("next_attempt_at")
        .values_list("id", "service_id")[:limit]
    )
    per_service: dict = {}
    queued = 0
    for event_id, service_id in due:
        if per_service.get(service_id, 0) >= delivery.IN_FLIGHT_PER_SERVICE:
            continue
        per_service[service_id] = per_service.get(service_id, 0) + 1
        callback_event_queue(event_id=event_id)
        queued += 1
    return queued


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
    queue them. A delivered event sent again keeps its `webhook-id`, for the receiver to drop."""
    events = CallbackEvent.objects.filter(state__in=states)
    if ids is not None:
        events = events.filter(id__in=ids)
    if service_id is not None:
        events = events.filter(service_id=service_id)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    ids = list(events.order_by("created_at").values_list("id", flat=True))
    for done, start in enumerate(range(0, len(ids), BATCH), start=1):
        chunk = ids[start : start + BATCH]
        current = now()
        CallbackEvent.objects.filter(id__in=chunk, state__in=states).update(
            state=CallbackState.PENDING, attempts=0, next_attempt_at=current, updated_at=current
        )
        for event_id in chunk:
            callback_event_queue(event_id=event_id)
        if progress:
            progress(min(done * BATCH, len(ids)), len(ids))
    return len(ids)
