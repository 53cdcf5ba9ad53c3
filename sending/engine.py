"""The delivery engine: the notifications table is the queue, drained a batch at a time, with many
provider calls in flight per process.

**Asking for a drain.** A notification made (or a due retry, a replay, an operator's requeue) is
marked `queued_at` and, once that commits, asks for its channel's drain
(`delivery_drain_request`). Asking takes the channel's slot, a cache entry made with `add`: while
a request waits in the broker, asking again costs one cache round trip and queues nothing, so a
100,000-text batch costs one broker message, not 100,000. The drain gives the slot back as it
starts, and asks again whenever a claim shows more is waiting, so idle workers (in this
qcluster or another) join in; the claims never collide. A request that waits unstarted holds the
slot for `DRAIN_REQUEST_SLOT_SECONDS` at most, so one taken by a busy qcluster never keeps an idle
one out for long.

**A drain.** It claims up to a batch of due notifications in one transaction (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, so drains running at once take different rows; SQLite has one writer at a
time): each gets a lease and, in the same commit, its first provider call on record as a
`started` attempt. So a receipt that beats the hand-over still applies, and a drain killed at any
line leaves the unknown-outcome hold to work (`sending/attempts.py`). The calls go to a bounded
pool of threads per provider (`DELIVERY_CONCURRENCY`; the threads only make the HTTP or boto3
call, over the client's kept-alive connections), and the drain records outcomes and hand-overs as
calls complete, a few at a time (one transaction and one change of the status module per group),
so no text waits for the slowest call of its batch. A failed call fails over at once to a
different provider (a new `started` attempt, then the call) or plans a retry. While calls are in
flight the drain claims more, keeping the pool busy, until half the task timeout has gone.

**One loop for every drain.** `drain_run` is the loop itself, with no knowledge of what it sends:
given how to claim, what a pool thread runs for an item, how to record a finished group (and
what to call again at once), and how to give back what was claimed and never called, it keeps
up to a capacity of items in its hands, claims more whenever half of that is free, starts calls
as places allow, and records each group of calls as it completes. The deliveries' drain
(`sending/delivery.py`) and the status callbacks' drain (`webhooks/delivery.py`) are both this
loop with their own steps.

**The rows are the truth.** A lost broker message, a drain killed mid-batch, a Redis flushed:
every notification is still `created` in the table, and the per-minute sweeps ask for the drain
again (`sending/sweeps.py`), with no command.
"""

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from notifyproject.broker import TASK_LEASE, broker_handle
from notifyproject.rows import rows_update
from sending.attempts import attempts_unknown_hold
from sending.models import Notification, NotificationStatus, NotificationType, SendAttempt

logger = logging.getLogger(__name__)

now = timezone.now  # seam for tests

# A live drain never loses its claim; a drain that died releases it when the lease runs out.
LEASE = TASK_LEASE

_SLOT_KEY = "delivery-drain-{}"
# How long one waiting request stops another. A request can wait where no worker takes it soon:
# in the hands of a qcluster whose workers are all draining (django-q's pusher takes tasks ahead
# of its workers), or lost with a Redis. After this, a drain that still finds more waiting asks
# again and an idle worker in another qcluster joins in. A second drain is harmless (claims never
# collide; one that finds nothing ends at once), and while a backlog lasts this costs at most one
# broker message per channel per period.
DRAIN_REQUEST_SLOT_SECONDS = 1
_IN_FLIGHT_KEY = "delivery-in-flight-{}"

T = TypeVar("T")


def notifications_free(current) -> Q:
    """Not held by a drain, and not waiting for a retry (or a hold) that is not yet due."""
    return (Q(lease_until__isnull=True) | Q(lease_until__lt=current)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=current)
    )


def deliveries_queued(notification_type: str) -> QuerySet[Notification]:
    """What a channel's drain claims from: `created` and queued (the partial index
    `notification_queued`). Whether each is free and due is the claim's to decide, at the time
    of each claim (`notifications_free`), so a drain takes what falls due while it runs."""
    return Notification.objects.filter(
        status=NotificationStatus.CREATED,
        notification_type=notification_type,
        queued_at__isnull=False,
    )


def deliveries_waiting(notification_type: str) -> QuerySet[Notification]:
    """A channel's notifications waiting for a drain now: queued, free and due."""
    return deliveries_queued(notification_type).filter(notifications_free(now()))


# --- asking for a drain ------------------------------------------------------------------------


def delivery_drain_request(notification_type: str) -> bool:
    """Make sure a drain of the channel is on its way: queue one unless one was asked for in the
    last `DRAIN_REQUEST_SLOT_SECONDS` and has not started (the slot is held). True when one was
    queued. Never raises: the rows are safe in the table, and the per-minute sweeps ask again."""
    key = _SLOT_KEY.format(notification_type)
    try:
        if not cache.add(key, 1, timeout=DRAIN_REQUEST_SLOT_SECONDS):
            return False
        try:
            async_task(
                "sending.tasks.drain_deliveries",
                str(notification_type),
                task_name=f"deliveries-drain-{notification_type}",
                broker=broker_handle(),
                save=False,  # each notification's outcome is on its row and its attempts
            )
        except Exception:
            cache.delete(key)
            raise
        return True
    except Exception:
        logger.exception(
            "delivery drain not queued", extra={"notification_type": str(notification_type)}
        )
    return False


def deliveries_drain_request(notification_types: Iterable[str]) -> None:
    for notification_type in sorted(set(notification_types)):
        delivery_drain_request(notification_type)


def delivery_drain_slot_free(notification_type: str) -> None:
    cache.delete(_SLOT_KEY.format(notification_type))


# --- the per-provider pools ---------------------------------------------------------------------

_pools: dict[str, ThreadPoolExecutor] = {}


def provider_pool(provider: str) -> ThreadPoolExecutor:
    """The process's bounded pool of calls to `provider` (made on first use)."""
    pool = _pools.get(provider)
    if pool is None:
        pool = _pools[provider] = ThreadPoolExecutor(
            max_workers=settings.DELIVERY_CONCURRENCY, thread_name_prefix=f"send-{provider}"
        )
    return pool


def provider_in_flight_limit(provider: str) -> int | None:
    return getattr(settings, f"{provider.upper()}_MAX_IN_FLIGHT", None)


def in_flight_take(provider: str) -> bool:
    """One of the provider's places in flight across every qcluster, when it has a limit (a
    shared counter; its expiry gives back places a killed process held). False: none is free
    now. Taken and given back by the drain's own thread, never a pool thread."""
    limit = provider_in_flight_limit(provider)
    if not limit:
        return True
    key = _IN_FLIGHT_KEY.format(provider)
    cache.add(key, 0, timeout=int(LEASE.total_seconds()))
    try:
        taken = cache.incr(key)
    except ValueError:  # expired between add and incr: try again on the next round
        return False
    if taken <= limit:
        return True
    in_flight_give_back(provider)
    return False


def in_flight_give_back(provider: str) -> None:
    if not provider_in_flight_limit(provider):
        return
    try:
        cache.decr(_IN_FLIGHT_KEY.format(provider))
    except ValueError:  # the counter expired meanwhile
        pass


@dataclass(frozen=True)
class CallResult:
    reference: str | None
    error: Exception | None
    duration_ms: int


def call_timed(call: Callable[[], str | None]) -> CallResult:
    """Runs in a pool thread: only the call (no database, no cache), timed; every failure is
    the result."""
    start = time.perf_counter()
    try:
        reference, error = call(), None
    except Exception as err:  # recorded, retried and logged by the drain
        reference, error = None, err
    return CallResult(reference, error, round((time.perf_counter() - start) * 1000))


# --- the drain loop -------------------------------------------------------------------------------


def _always(_item) -> bool:
    return True


def _nothing(_item) -> None:
    return None


def drain_run(
    *,
    claim: Callable[[int], list[T]],
    call: Callable[[T], Callable[[], Any]],
    record: Callable[[list[tuple[T, Any]]], list[T]],
    release: Callable[[list[T]], None],
    pool: Callable[[T], Executor],
    capacity: int,
    ended: Callable[[], bool],
    once: bool = False,
    take: Callable[[T], bool] = _always,
    give_back: Callable[[T], None] = _nothing,
    look_again: float | None = 0.05,
    gather: float = 0.0,
    claim_every: float | None = None,
) -> None:
    """The loop of a drain, until a claim finds nothing and nothing is in flight, or `ended()`
    and the calls in flight are done. Each step runs in the drain's own thread, so every
    database write is that thread's; a pool thread only runs what `call(item)` returned.

    - `claim(n)`: up to n items, leased to this drain. Asked whenever at most half of
      `capacity` is in hand (in flight, or claimed and waiting for a place); once it finds
      nothing, not again until every call is done, or, with `claim_every`, until that many
      seconds have passed since (so what arrives while calls are in flight is taken by the
      drain already running, not left for a worker to come free). With `once`, asked once only.
    - `take(item)`: a place for its call now (False: it waits, in order, for one);
      `give_back(item)` once its call completed. For places given back elsewhere (another
      process), the drain looks again every `look_again` seconds; with None, places come back
      only as this drain's own calls complete.
    - `gather`: once a call completes, how long to wait for the others in flight, so that calls
      answered within moments of each other are recorded as one group (one transaction), not
      one by one.
    - `record(finished)`: the outcomes of a group of calls that completed, as (item, what the
      call returned); returns items whose call is to be made at once (a fail-over).
    - `release(items)`: claimed items never called, given back once `ended()` (or, with `once`,
      after the claim) so that the next drain claims them.
    """
    in_flight: dict[Future, T] = {}
    held: deque[T] = deque()  # claimed, waiting for a place
    found_none = False  # the last claim found nothing: claim again only once all calls are done
    took_all = False  # the last claim took all there was (fewer than asked for, or none)
    claimed_at = -float("inf")  # time.monotonic() of the last claim

    def look_soon(busy: int) -> bool:
        """Calls in flight, and nothing more was waiting at the last claim: with
        `claim_every`, look again that often (while half the capacity is free)."""
        return claim_every is not None and not once and took_all and 0 < busy <= capacity // 2

    while True:
        may_claim = not (once and found_none) and not ended()
        busy = len(in_flight) + len(held)
        claim_due = not (found_none and busy) or (
            look_soon(busy) and time.monotonic() - claimed_at >= claim_every
        )
        if may_claim and busy <= capacity // 2 and claim_due:
            want = capacity - busy
            items = claim(want)
            claimed_at = time.monotonic()
            found_none = once or not items
            took_all = len(items) < want
            held.extend(items)
        for _ in range(len(held)):
            item = held.popleft()
            if take(item):
                in_flight[pool(item).submit(call(item))] = item
            else:
                held.append(item)
        if held and not may_claim:
            # Past its time, a drain lets go of what it never called, long before the lease
            # would run out: the next drain claims it.
            release(list(held))
            held.clear()
        if not in_flight and not held:
            if found_none or not may_claim:
                return
            continue
        timeout = None
        if held:
            timeout = look_again if in_flight else look_again or 0
        if may_claim and look_soon(len(in_flight) + len(held)):
            next_claim = max(0.0, claimed_at + claim_every - time.monotonic())
            timeout = next_claim if timeout is None else min(timeout, next_claim)
        done, rest = wait(list(in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        if gather and done and rest:
            done |= wait(rest, timeout=gather).done
        finished = [(in_flight.pop(future), future.result()) for future in done]
        for item, _result in finished:
            give_back(item)
        held.extend(record(finished))


# --- a delivery drain ---------------------------------------------------------------------------


@dataclass
class Send:
    """One notification in a drain's hands: the call in flight and its `started` attempt."""

    notification: Notification
    provider: str | None = None
    attempt: SendAttempt | None = None
    tried: set[str] = field(default_factory=set)


def deliveries_claim(queryset: QuerySet[Notification], *, batch: int) -> list[Notification]:
    """Up to `batch` of `queryset` that are `created`, free and due, oldest queued first, leased
    to this drain in one transaction; those whose last call has no outcome are held for a receipt
    instead (`attempts_unknown_hold`) and left out. A few statements whatever the batch: the
    locking read and the lease and, only when rows were claimed before, one read of their
    attempts and the writes of the holds and resends."""
    current = now()
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic(savepoint=False):  # the caller's transaction, if any
        rows = list(
            queryset.filter(status=NotificationStatus.CREATED)
            .filter(notifications_free(current))
            .select_for_update(skip_locked=skip_locked)
            .order_by("queued_at", "id")[:batch]
        )
        holds = attempts_unknown_hold(rows)
        # Out of the queue until the hold ends; the due-retry sweep queues it then.
        rows_update(
            Notification,
            {
                row_id: {"next_attempt_at": hold_until, "queued_at": None, "lease_until": None}
                for row_id, hold_until in holds.items()
            },
        )
        claimed = [row for row in rows if row.id not in holds]
        lease_until = current + LEASE
        Notification.objects.filter(id__in=[row.id for row in claimed]).update(
            lease_until=lease_until
        )
        for row in claimed:
            row.lease_until = lease_until
    return claimed


def attempts_start(sends: list[Send]) -> None:
    """Each send's call on record as `started` before it is made: one insert for the lot (the
    caller's transaction, if any, commits them with the claim)."""
    at = now()
    attempts = SendAttempt.objects.bulk_create(
        [
            SendAttempt(
                notification=send.notification,
                provider=send.provider,
                started_at=at,
                outcome=SendAttempt.Outcome.STARTED,
            )
            for send in sends
        ]
    )
    for send, attempt in zip(sends, attempts, strict=True):
        send.attempt = attempt
        send.tried.add(send.provider)


def notification_types() -> tuple[str, ...]:
    return tuple(NotificationType.values)
