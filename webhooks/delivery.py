"""Sending callback events: a service's drain claims them, POSTs them signed, several at once,
records each group of attempts as it completes, plans what is next, and goes on until none is
due.

**On the delivery engine.** A drain is `sending.engine.drain_run`, the loop the deliveries' drain
runs on, given a callback's steps (`_Turn`): claim the service's due events
(`callback_events_claim`), POST one in a pool thread (`callback_post`: the HTTP call alone, no
database), record a finished group (`_record_many`, in the drain's own thread, which makes every
write), give back what was claimed and never POSTed (`_release`). A claim is a conditional change
under row locks (only events that are due and, for a `sending` one, whose lease has run out; `SKIP
LOCKED`, so two drains of one service take different events), and no lock is held while a POST is in
flight. Delivery is at least once: a worker that dies after a POST and before its group is recorded
leaves the lease to run out, and the event is sent again with the same `webhook-id`, for the
receiver to drop.

Isolation: drains are tasks of their own on the callbacks cluster's queue, asked for after the
status change commits (`webhooks.outbox`), with a pool of threads of their own, so a receipt or
a send never waits for a service's endpoint, nor for a worker or a thread one holds. Each POST is
bounded by `SERVICE_CALLBACK_TIMEOUT_SECONDS` (connect and read); a service has at most
`IN_FLIGHT_PER_SERVICE` drains at once and `CALLBACK_IN_FLIGHT_PER_SERVICE` POSTs in flight
across them (`POSTS_PER_DRAIN` each), so a slow or dead endpoint holds at most that many workers
and threads however many events it has waiting. A drain's first POST goes alone: a failing
endpoint gets one POST, not a volley. A drain starts POSTs for `DRAIN_SLICE`, lets those in
flight finish, gives back the rest it claimed, then asks for a fresh task, which joins the back
of the queue: when more services are busy than there are workers, they take turns.

Retries on time: a drain stops at the first failure worth retrying (the endpoint is down or
overloaded): no more POSTs start, those in flight are recorded, and the rest it claimed waits
`FIRST_RETRY` untouched. Django Q has no countdown (a one-off schedule runs when the scheduler
next looks, about every 30 s, and the sweep runs each minute), so when the failed event's retry
is due within `RETRY_WAIT` (its first two, 10 s and 20 s after a failure) the drain keeps its
worker, inside the service's share, and tries that event again, alone, when it is due; once it
goes through, the drain carries on with the rest. Later retries are asked for by the per-minute
sweep. Waiting in the drain rather than in a follow-up task keeps the service's slot held, so the
wait never adds a second worker to its share.
"""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from notifyproject import metrics
from notifyproject.broker import TASK_LEASE
from sending.engine import drain_run
from sending.text_rules import field_fit
from webhooks.guard import CallbackUrlRefused, GuardedAdapter, url_form_check
from webhooks.models import (
    ENDPOINT_MODELS,
    CallbackAttempt,
    CallbackEndpoint,
    CallbackEvent,
    CallbackState,
)
from webhooks.outbox import (
    IN_FLIGHT_PER_SERVICE,
    callback_drain_request,
    callback_drain_slot_free,
    callback_drain_slot_take,
)

logger = logging.getLogger(__name__)

now = timezone.now  # seams for tests
sleep = time.sleep

# A claim's lease: as long as the drain's slot (`webhooks.outbox`), so both run out together.
LEASE = TASK_LEASE
# Events a drain holds at most: in flight, and claimed waiting for a place.
DRAIN_BATCH = 50
# POSTs one drain has in flight at most: the service's share (`CALLBACK_IN_FLIGHT_PER_SERVICE`)
# split between the drains it may have at once (`IN_FLIGHT_PER_SERVICE`).
POSTS_PER_DRAIN = max(1, settings.CALLBACK_IN_FLIGHT_PER_SERVICE // IN_FLIGHT_PER_SERVICE)
# The longest a drain task may start POSTs (or wait for a retry) for: one more may take two
# timeouts (connect and read), and the task must end before django-q's `timeout`.
DRAIN_BUDGET = max(
    1.0, settings.Q_CLUSTER["timeout"] - 2 * settings.SERVICE_CALLBACK_TIMEOUT_SECONDS - 5
)
# How long a drain starts POSTs for before it hands over to a fresh task at the queue's back.
DRAIN_SLICE = 10.0
FIRST_RETRY = timedelta(seconds=10)
# Once a POST is answered, how long the drain waits for the others in flight before recording:
# a fast endpoint's answers go into the database a group at a time, not one transaction each.
GATHER_SECONDS = 0.01
# A failed event's retry due within this is waited for by its drain (see above).
RETRY_WAIT = timedelta(seconds=20)
LONGEST_RETRY = timedelta(hours=1)
RETRIED_STATUS_CODES = frozenset({408, 429})
# Enough of an answer's body to keep the connection for the next POST; more is not read.
READ_AT_MOST = 64 * 1024
_WAITING = (CallbackState.PENDING, CallbackState.RETRYING)


@dataclass(frozen=True)
class Claimed:
    event: CallbackEvent
    url: str
    bearer_token: str
    signing_secrets: list[str]


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str
    retryable: bool
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempts_made: int) -> timedelta:
    """10 s after the first failed attempt, then doubling, at most an hour."""
    return min(FIRST_RETRY * 2 ** (attempts_made - 1), LONGEST_RETRY)


def _due(current) -> Q:
    waiting = Q(state__in=_WAITING, next_attempt_at__lte=current)
    abandoned = Q(state=CallbackState.SENDING, next_attempt_at__lt=current)
    return waiting | abandoned


def callback_events_claim(*, service_id, limit: int | None = None, event_id=None) -> list[Claimed]:
    """Take up to `limit` (`DRAIN_BATCH`) of the service's due events (only `event_id`, when
    given), oldest first, for this worker; those of a service that removed the callback their
    kind goes to are given up."""
    current = now()
    with transaction.atomic():
        due = CallbackEvent.objects.select_for_update(skip_locked=True).filter(
            _due(current), service_id=service_id
        )
        if event_id is not None:
            due = due.filter(id=event_id)
        events = list(due.order_by("next_attempt_at")[: limit or DRAIN_BATCH])
        if not events:
            return []
        endpoints = _endpoints_for(service_id, {event.kind for event in events})
        unsendable = [event for event in events if endpoints[event.kind] is None]
        if unsendable:
            _record_many([(event, current, NOT_CONFIGURED) for event in unsendable])
        events = [event for event in events if endpoints[event.kind] is not None]
        CallbackEvent.objects.filter(id__in=[event.id for event in events]).update(
            state=CallbackState.SENDING, next_attempt_at=current + LEASE, updated_at=current
        )
    claimed = []
    for event in events:
        endpoint = endpoints[event.kind]
        claimed.append(
            Claimed(event, endpoint.url, endpoint.bearer_token, endpoint.signing_secrets())
        )
    return claimed


def _endpoints_for(service_id, kinds: set[str]) -> dict[str, CallbackEndpoint | None]:
    """Where the service wants each kind of event sent (None: it has no such endpoint); a
    status and a complaint event share the one row."""
    rows = {
        model: model.objects.filter(service_id=service_id).first()
        for model in {ENDPOINT_MODELS[kind] for kind in kinds}
    }
    return {kind: rows[ENDPOINT_MODELS[kind]] for kind in kinds}


def callback_event_claim(*, event_id: str) -> Claimed | None:
    """Take this one event for this worker; None when it is not due or is another worker's."""
    service_id = (
        CallbackEvent.objects.filter(id=event_id).values_list("service_id", flat=True).first()
    )
    if service_id is None:
        return None
    claimed = callback_events_claim(service_id=service_id, limit=1, event_id=event_id)
    return claimed[0] if claimed else None


# The service removed its callback after the event was written: nowhere to send it.
NOT_CONFIGURED = AttemptResult(None, "no callback configured", False, 0)


def callback_headers(*, claimed: Claimed, body: str, sent_at) -> dict[str, str]:
    """Contract section 10: the bearer token and the Standard Webhooks headers; while a
    secret is rolled, one signature per secret, space-separated."""
    message_id = str(claimed.event.id)
    signatures = " ".join(
        Webhook(secret).sign(message_id, sent_at, body) for secret in claimed.signing_secrets
    )
    return {
        "Authorization": f"Bearer {claimed.bearer_token}",
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
    }


_session: requests.Session | None = None


def _http() -> requests.Session:
    """One session per process (it keeps the connection pools), every connection guarded."""
    global _session
    if _session is None:
        _session = requests.Session()
        _session.trust_env = False  # no proxy from the environment between us and the guard
        adapter = GuardedAdapter(pool_maxsize=max(8, POSTS_PER_DRAIN), max_retries=0)
        _session.mount("https://", adapter)
        _session.mount("http://", adapter)
    return _session


def callback_post(*, claimed: Claimed, sent_at) -> AttemptResult:
    """One POST, never following a redirect; what came of it, and whether to try again."""
    body = json.dumps(claimed.event.payload, separators=(",", ":"))
    timeout = settings.SERVICE_CALLBACK_TIMEOUT_SECONDS
    start = time.perf_counter()
    status_code, error, retryable = None, "", False
    try:
        url_form_check(claimed.url)
        response = _http().post(
            claimed.url,
            data=body.encode(),
            headers=callback_headers(claimed=claimed, body=body, sent_at=sent_at),
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
        with response:
            read = 0
            for chunk in response.iter_content(8192):
                read += len(chunk)
                if read > READ_AT_MOST:
                    break
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code} {response.reason or ''}".strip()
            # Any other 4xx is the service refusing the event. A redirect is never followed
            # and is retried like a 5xx: an endpoint being moved, or a proxy before it.
            retryable = status_code in RETRIED_STATUS_CODES or not 400 <= status_code < 500
    except CallbackUrlRefused as err:
        error = f"refused: {err}"
    except requests.Timeout:
        error, retryable = f"timeout after {timeout:g} s", True
    except requests.ConnectionError as err:
        error, retryable = f"connection error: {_reason(err)}", True
    except requests.RequestException as err:
        error = f"request error: {_reason(err)}"
    duration_ms = round((time.perf_counter() - start) * 1000)
    metrics.timing("service-callbacks.request-time", duration_ms / 1000)
    return AttemptResult(
        status_code, field_fit(CallbackAttempt, "error", error), retryable, duration_ms
    )


def _reason(err: Exception) -> str:
    # urllib3 nests the cause several levels down; its last line is what went wrong.
    text = str(err)
    return text[text.rfind(":") + 1 :].strip(" )'\"") or type(err).__name__


def _record_many(attempted: list[tuple[CallbackEvent, object, AttemptResult]]) -> list[str]:
    """Each attempt's row and each event's next state, together in one transaction (a few
    statements for a whole batch); returns the states, in order."""
    current = now()
    rows, states = [], []
    changes: dict[tuple, list] = {}
    for event, started_at, result in attempted:
        attempts = event.attempts + 1
        if result.ok:
            state, next_at, outcome = CallbackState.DELIVERED, current, "delivered"
        elif result.retryable and attempts < settings.SERVICE_CALLBACK_MAX_ATTEMPTS:
            state, outcome = CallbackState.RETRYING, "retry"
            next_at = current + retry_delay(attempts)
        else:
            state, next_at, outcome = CallbackState.GIVEN_UP, current, "given-up"
        states.append(state)
        changes.setdefault((state, next_at), []).append(event.id)
        rows.append(
            CallbackAttempt(
                event=event,
                notification_id=event.notification_id,
                started_at=started_at,
                duration_ms=result.duration_ms,
                status_code=result.status_code,
                outcome=outcome,
                error=result.error,
            )
        )
    with transaction.atomic():
        CallbackAttempt.objects.bulk_create(rows)
        for (state, next_at), ids in changes.items():
            # Never from `delivered`: a delivery recorded by a drain whose lease ran out is
            # never undone.
            CallbackEvent.objects.filter(id__in=ids).exclude(state=CallbackState.DELIVERED).update(
                state=state, attempts=F("attempts") + 1, next_attempt_at=next_at, updated_at=current
            )
    return states


def _release(claimed: list[Claimed], *, after: timedelta) -> None:
    """Claimed events not sent after all: due again `after` from now, no attempt counted."""
    if not claimed:
        return
    current = now()
    ids = [one.event.id for one in claimed]
    back = CallbackEvent.objects.filter(id__in=ids, state=CallbackState.SENDING)
    back.filter(attempts=0).update(
        state=CallbackState.PENDING, next_attempt_at=current + after, updated_at=current
    )
    back.filter(attempts__gt=0).update(
        state=CallbackState.RETRYING, next_attempt_at=current + after, updated_at=current
    )


def _report(claimed: Claimed, result: AttemptResult, state: str) -> None:
    event = claimed.event
    metrics.incr("service-callbacks.success" if result.ok else "service-callbacks.error")
    if state == CallbackState.RETRYING:
        metrics.incr("service-callbacks.retry")
    elif state == CallbackState.GIVEN_UP:
        metrics.incr("service-callbacks.given-up")
    extra = {
        "event_id": str(event.id),
        # What the event is about: a notification, or (an inbound event) a received text.
        "notification_id": str(event.notification_id or "") or None,
        "received_text_id": str(event.received_text_id or "") or None,
        "service_id": str(event.service_id),
        "kind": event.kind,
        "attempt": event.attempts + 1,
        "status_code": result.status_code,
        "duration_ms": result.duration_ms,
        "state": state,
    }
    if result.ok:
        logger.info("callback delivered", extra=extra)
    elif state == CallbackState.GIVEN_UP:
        logger.warning("callback given up", extra={**extra, "error": result.error})
    else:
        # The service's endpoint, not ours: nobody here should be paged for it.
        logger.info("callback failed, will retry", extra={**extra, "error": result.error})


# --- a drain: the engine's loop (`sending.engine.drain_run`) with a callback's steps -------------

_pool: ThreadPoolExecutor | None = None


def _posts_pool() -> ThreadPoolExecutor:
    """The process's threads for POSTs (one drain runs at a time in a worker process)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=POSTS_PER_DRAIN, thread_name_prefix="callback")
    return _pool


class _Turn:
    """A drain's turn at a service's events: claim, POST in the pool, record, as the engine asks.
    One POST goes first, alone, and only once the endpoint has answered one (not with a failure
    worth retrying) are up to `POSTS_PER_DRAIN` in flight, so a failing endpoint gets one POST, not
    a volley. The first failure worth retrying stops the turn: no more POSTs start, those in flight
    are recorded, and the claimed rest waits `FIRST_RETRY` untouched. Past `ends` (after its first
    POST), no more start either, and the claimed rest is due again at once, for the next task."""

    def __init__(self, service_id, *, ends: float, first=None) -> None:
        self.service_id = service_id
        self.ends = ends
        self.first = first  # the event to claim first, alone (a retry waited for)
        self.window = 1
        self.in_flight = self.started = 0
        self.states: list[str] = []
        self.stopped = False  # the endpoint failed
        self.failed: Claimed | None = None  # the first event it failed on, when it is retried

    def run(self, *, once: bool = False) -> None:
        drain_run(
            claim=self._claim,
            call=self._call,
            record=self._record,
            release=self._release,
            pool=lambda _claimed: _posts_pool(),
            capacity=max(DRAIN_BATCH, POSTS_PER_DRAIN),
            ended=self._ended,
            once=once,
            take=self._take,
            give_back=self._give_back,
            look_again=None,  # its places come back only as its own POSTs complete
            gather=GATHER_SECONDS,
        )

    def _ended(self) -> bool:
        return self.stopped or (self.started > 0 and time.monotonic() > self.ends)

    def _claim(self, want: int) -> list[Claimed]:
        if self.first is not None:
            event_id, self.first = self.first, None
            return callback_events_claim(service_id=self.service_id, limit=1, event_id=event_id)
        return callback_events_claim(service_id=self.service_id, limit=want)

    def _take(self, _claimed: Claimed) -> bool:
        if self._ended() or self.in_flight >= self.window:
            return False
        self.in_flight += 1
        self.started += 1
        return True

    def _give_back(self, _claimed: Claimed) -> None:
        self.in_flight -= 1

    def _call(self, claimed: Claimed):
        sent_at = now()
        return lambda: (sent_at, callback_post(claimed=claimed, sent_at=sent_at))

    def _record(self, finished: list[tuple[Claimed, tuple]]) -> list[Claimed]:
        attempted = [(claimed, at, result) for claimed, (at, result) in finished]
        states = _record_many([(claimed.event, at, result) for claimed, at, result in attempted])
        for (claimed, _, result), state in zip(attempted, states, strict=True):
            _report(claimed, result, state)
            if not result.retryable:  # the endpoint answers (a 2xx, or a refusal for good)
                self.window = POSTS_PER_DRAIN
            else:
                self.stopped = True
                if self.failed is None and state == CallbackState.RETRYING:
                    self.failed = claimed
        self.states += states
        return []

    def _release(self, claimed: list[Claimed]) -> None:
        _release(claimed, after=FIRST_RETRY if self.stopped else timedelta(0))


def callback_event_send(*, event_id: str) -> str | None:
    """Claim, POST and record this one event; its new state, or None when it was not ours to
    send."""
    service_id = (
        CallbackEvent.objects.filter(id=event_id).values_list("service_id", flat=True).first()
    )
    if service_id is None:
        return None
    turn = _Turn(service_id, ends=time.monotonic(), first=event_id)
    turn.run(once=True)
    return turn.states[0] if turn.states else None


def _due_for(service_id) -> bool:
    return CallbackEvent.objects.filter(_due(now()), service_id=service_id).exists()


def callbacks_drain(*, service_id, slot: int = 0) -> int:
    """The drain task: send the service's due events until none is left, holding `slot` (see
    `webhooks.outbox`). Returns how many were sent."""
    task_ends = time.monotonic() + DRAIN_BUDGET
    sent = 0
    first = None
    while True:
        turn = _Turn(service_id, ends=min(time.monotonic() + DRAIN_SLICE, task_ends), first=first)
        turn.run()
        sent += len(turn.states)
        first = None
        if turn.failed is not None and _retry_waited(turn.failed, task_ends):
            first = turn.failed.event.id  # its retry first, turn or not; then the rest
            continue
        if turn.stopped:  # still failing (the sweep asks again when it is due), or given up
            callback_drain_slot_free(service_id=service_id, slot=slot)
            return sent
        if time.monotonic() > turn.ends:  # its turn is over: a fresh task, others first
            callback_drain_slot_free(service_id=service_id, slot=slot)
            callback_drain_request(service_id=service_id)
            return sent
        callback_drain_slot_free(service_id=service_id, slot=slot)
        # An event committed while the slot was held asked for no drain: look once more.
        if not (
            _due_for(service_id) and callback_drain_slot_take(service_id=service_id, slot=slot)
        ):
            return sent


def _retry_waited(failed: Claimed, task_ends: float) -> bool:
    """When the failed event's retry is due soon enough, wait for it; False when it is not."""
    wait = retry_delay(failed.event.attempts + 1)
    if wait > RETRY_WAIT or time.monotonic() + wait.total_seconds() > task_ends:
        return False
    sleep(wait.total_seconds())
    return True
