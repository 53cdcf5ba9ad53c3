"""Sending one callback event: claim it, POST it signed, record the attempt, plan what is next.

A worker first claims the event with a conditional change under a row lock (only when it is due
and, for a `sending` one, only once its lease has run out), so two workers never both send it
at once; no lock is held while the POST is in flight. Delivery is at least once: a worker that
dies after the POST and before recording it leaves the lease to run out, and the event is sent
again with the same `webhook-id`, for the receiver to drop.

Isolation: callbacks are tasks of their own, queued after the status change commits, so a
receipt or a send never waits for a service's endpoint. Each POST is bounded by
`SERVICE_CALLBACK_TIMEOUT_SECONDS` (connect and read), and a service has at most
`IN_FLIGHT_PER_SERVICE` attempts in flight at once across every worker (counted under a lock
on its callback row), so a slow or dead endpoint can hold at most that many workers, however
many events it has waiting; the other services' callbacks and the deliveries keep the rest. An
event over the limit is marked waiting, and the attempt that frees a place queues the service's
next one (the per-minute sweep catches any left over).
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from notifyproject import metrics
from webhooks.guard import CallbackUrlRefused, GuardedAdapter, url_form_check
from webhooks.models import (
    CallbackAttempt,
    CallbackEvent,
    CallbackState,
    ServiceCallback,
)
from webhooks.outbox import callback_event_queue

logger = logging.getLogger(__name__)

now = timezone.now  # seam for tests

# Half of one cluster's workers (at least one) per service: with the default 2 workers, one.
IN_FLIGHT_PER_SERVICE = max(1, settings.Q_CLUSTER["workers"] // 2)
# Longer than a task may run (django-q kills it at `timeout`): a live worker keeps its claim.
LEASE = timedelta(seconds=settings.Q_CLUSTER["timeout"] + 30)
FIRST_RETRY = timedelta(seconds=10)
LONGEST_RETRY = timedelta(hours=1)
RETRIED_STATUS_CODES = frozenset({408, 429})
# Enough of an answer's body to keep the connection for the next POST; more is not read.
READ_AT_MOST = 64 * 1024
_WAITING = (CallbackState.PENDING, CallbackState.RETRYING)
HAND_OFF_AFTER = timedelta(seconds=5)


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


def callback_event_claim(*, event_id: str) -> Claimed | None:
    """Take the event for this worker; None when it is not due, is another worker's, or its
    service already has `IN_FLIGHT_PER_SERVICE` attempts in flight."""
    service_id = (
        CallbackEvent.objects.filter(id=event_id).values_list("service_id", flat=True).first()
    )
    if service_id is None:
        return None
    current = now()
    with transaction.atomic():
        # The callback row first, always: it serialises the service's claims for the count.
        callback = ServiceCallback.objects.select_for_update().filter(service_id=service_id).first()
        event = CallbackEvent.objects.select_for_update().filter(_due(current), id=event_id).first()
        if event is None:
            return None
        if callback is None:
            _give_up_unconfigured(event, current)
            return None
        in_flight = CallbackEvent.objects.filter(
            service_id=service_id, state=CallbackState.SENDING, next_attempt_at__gt=current
        ).count()
        if in_flight >= IN_FLIGHT_PER_SERVICE:
            # Due `HAND_OFF_AFTER` earlier marks it as waiting for a place: the attempt that
            # ends next queues it (`callback_queue_next`) rather than leaving it to the sweep.
            CallbackEvent.objects.filter(id=event.id).update(
                next_attempt_at=min(event.next_attempt_at, current - HAND_OFF_AFTER)
            )
            logger.info(
                "callback waits: service at its limit",
                extra={"event_id": event_id, "service_id": str(service_id), "in_flight": in_flight},
            )
            return None
        CallbackEvent.objects.filter(id=event.id).update(
            state=CallbackState.SENDING, next_attempt_at=current + LEASE, updated_at=current
        )
        return Claimed(
            event=event,
            url=callback.url,
            bearer_token=callback.bearer_token,
            signing_secrets=callback.signing_secrets(),
        )


def _give_up_unconfigured(event: CallbackEvent, current) -> None:
    """The service removed its callback after the event was written: nowhere to send it."""
    _record(event, current, AttemptResult(None, "no callback configured", False, 0))


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
        adapter = GuardedAdapter(pool_maxsize=8, max_retries=0)
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
            retryable = status_code in RETRIED_STATUS_CODES or status_code >= 500
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
    return AttemptResult(status_code, error[:500], retryable, duration_ms)


def _reason(err: Exception) -> str:
    # urllib3 nests the cause several levels down; its last line is what went wrong.
    text = str(err)
    return text[text.rfind(":") + 1 :].strip(" )'\"") or type(err).__name__


def _record(event: CallbackEvent, started_at, result: AttemptResult) -> str:
    """The attempt's row and the event's next state, together; returns that state."""
    attempts = event.attempts + 1
    if result.ok:
        state, next_at, outcome = CallbackState.DELIVERED, event.next_attempt_at, "delivered"
    elif result.retryable and attempts < settings.SERVICE_CALLBACK_MAX_ATTEMPTS:
        state, next_at, outcome = CallbackState.RETRYING, now() + retry_delay(attempts), "retry"
    else:
        state, next_at, outcome = CallbackState.GIVEN_UP, event.next_attempt_at, "given-up"
    with transaction.atomic():
        CallbackAttempt.objects.create(
            event=event,
            notification_id=event.notification_id,
            started_at=started_at,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            outcome=outcome,
            error=result.error,
        )
        # Only from `sending` (or, for an unconfigured service, from where it was): a delivery
        # recorded by a worker whose lease ran out is never undone.
        CallbackEvent.objects.filter(id=event.id).exclude(state=CallbackState.DELIVERED).update(
            state=state, attempts=attempts, next_attempt_at=next_at, updated_at=now()
        )
    return state


def _report(claimed: Claimed, result: AttemptResult, state: str) -> None:
    event = claimed.event
    metrics.incr("service-callbacks.success" if result.ok else "service-callbacks.error")
    if state == CallbackState.RETRYING:
        metrics.incr("service-callbacks.retry")
    elif state == CallbackState.GIVEN_UP:
        metrics.incr("service-callbacks.given-up")
    extra = {
        "event_id": str(event.id),
        "notification_id": str(event.notification_id),
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


def callback_event_send(*, event_id: str) -> str | None:
    """Claim, POST, record; then queue the service's next waiting event. Returns the event's
    new state, or None when it was not ours to send."""
    claimed = callback_event_claim(event_id=event_id)
    if claimed is None:
        return None
    started_at = now()
    result = callback_post(claimed=claimed, sent_at=started_at)
    state = _record(claimed.event, started_at, result)
    _report(claimed, result, state)
    callback_queue_next(service_id=claimed.event.service_id)
    return state


def callback_queue_next(*, service_id) -> None:
    """A place is free: queue the service's longest-waiting due event, if any. Only one due
    for `HAND_OFF_AFTER` (one refused a place is marked so): a new event's own task is normally
    on its way already. Under the callback row's lock, so a claim refused at this moment has
    either marked its event already, or will find the place free."""
    with transaction.atomic():
        ServiceCallback.objects.select_for_update().filter(service_id=service_id).values_list(
            "pk", flat=True
        ).first()
        waiting = (
            CallbackEvent.objects.filter(
                service_id=service_id,
                state__in=_WAITING,
                next_attempt_at__lte=now() - HAND_OFF_AFTER,
            )
            .order_by("next_attempt_at")
            .values_list("id", flat=True)
            .first()
        )
    if waiting is not None:
        callback_event_queue(event_id=waiting)
