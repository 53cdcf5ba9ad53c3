"""Handing notifications to providers: the steps of a drain (`sending/engine.py` has the queue,
the claim, the pools and the loop, `drain_run`): claim a batch with each first call on record,
make the calls, record what happened as they complete, fail over or plan a retry.

No transaction or row lock is held while a provider call is in flight, and the pool threads make
only the calls: every database write is the drain's own thread's.
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from notifyproject import metrics
from notifyproject.masking import recipient_mask
from sending.attempts import attempt_outcome, attempts_finish
from sending.clients import email_client, sms_client
from sending.clients.exceptions import EmailClientException, SmsClientResponseException
from sending.engine import (
    CallResult,
    Send,
    attempts_start,
    call_timed,
    deliveries_claim,
    deliveries_queued,
    drain_run,
    in_flight_give_back,
    in_flight_take,
    provider_pool,
)
from sending.failover import (
    provider_check_errors,
    provider_choose,
    provider_pick,
    sms_providers_active,
)
from sending.models import (
    KeyType,
    Notification,
    NotificationStatus,
    NotificationType,
    ProviderDetails,
    SendAttempt,
)
from sending.services import notifications_queue_delivery
from sending.status import (
    StatusChange,
    handlers_load,
    notification_fail,
    notifications_lock,
    notifications_status_change,
)

logger = logging.getLogger(__name__)

now = timezone.now  # seam for tests

SES = "ses"

# The chosen provider, then at once a different active one.
PROVIDERS_PER_RUN = 2

# While its calls are in flight, a drain whose last claim took all there was looks again this
# often: a text accepted meanwhile goes out with the drain already running, instead of waiting
# for a worker to come free for its drain request. An empty claim is one indexed read.
CLAIM_EVERY_SECONDS = 0.05


def _locked(notification_id, *fields: str) -> Notification | None:
    return next(iter(notifications_lock([notification_id], fields=fields).values()), None)


def sends_claim(queryset: QuerySet[Notification], *, batch: int) -> list[Send]:
    """Claim up to `batch` (`deliveries_claim`) and, in the same commit, put each one's first
    call on record as `started`; those with no provider to send to wait for a retry."""
    with transaction.atomic():
        claimed = deliveries_claim(queryset, batch=batch)
        ses_active = any(row.notification_type == NotificationType.EMAIL for row in claimed) and (
            ProviderDetails.objects.filter(name=SES, active=True).exists()
        )
        sms = any(row.notification_type == NotificationType.SMS for row in claimed)
        providers = sms_providers_active() if sms else []
        sends, unsendable = [], []
        for row in claimed:
            provider = _provider_first(row, providers=providers, ses_active=ses_active)
            if provider is None:
                unsendable.append(row)
            else:
                sends.append(Send(notification=row, provider=provider))
        attempts_start(sends)
    for row in claimed:
        notification_record_queued_for(notification=row)
    for row in unsendable:
        _retry_later(row, reason=_NO_PROVIDER[row.notification_type])
    return sends


_NO_PROVIDER = {
    NotificationType.SMS: "no active SMS provider",
    NotificationType.EMAIL: "SES is not active",
}


def _provider_first(notification: Notification, *, providers, ses_active: bool) -> str | None:
    if notification.notification_type == NotificationType.EMAIL:
        return SES if ses_active else None
    return provider_pick(providers, international=notification.international)


def _simulated(send: Send) -> bool:
    return send.notification.key_type == KeyType.TEST


def send_call(send: Send) -> Callable[[], str | None]:
    """What the pool thread runs: the provider call alone (a test key's calls no provider)."""
    notification = send.notification
    if _simulated(send):
        return _simulated_call(send.provider)
    if notification.notification_type == NotificationType.SMS:
        return _sms_call(notification=notification, provider=send.provider)
    client = email_client()
    return lambda: client.send_email(
        to=notification.recipient,
        subject=notification.subject,
        body=notification.content,
        reference=str(notification.id),
        reply_to=notification.sender or None,
        unsubscribe_url=notification.unsubscribe_url,
    )


def sends_record(finished: list[tuple[Send, CallResult]]) -> int:
    """The outcomes of calls that completed, as a group: each attempt's outcome and the
    hand-overs (one change of the status module) commit together, so a drain killed between them
    can't leave an attempt marked sent on a notification still `created`, to go out again at
    once; killed before, the attempts stay `started` and the next claim holds them for a receipt.
    A receipt that got there first keeps its status. Returns how many were handed over."""
    taken = [(send, result) for send, result in finished if result.error is None]
    with transaction.atomic():
        attempts_finish(
            {
                send.attempt.id: attempt_outcome(
                    result.error, result.duration_ms, simulated=_simulated(send)
                )
                for send, result in finished
            }
        )
        if taken:
            notifications_status_change(
                [
                    StatusChange(
                        notification_id=send.notification.id,
                        status=NotificationStatus.SENDING,
                        sent_by=send.provider,
                        provider_reference=result.reference,
                    )
                    for send, result in taken
                ]
            )
    for send, result in taken:
        _report_handed_over(send, result)
    for send, result in finished:
        if result.error is not None:
            _log_failure(
                notification=send.notification,
                provider=send.provider,
                error=result.error,
                duration_ms=result.duration_ms,
            )
    return len(taken)


def _report_handed_over(send: Send, result: CallResult) -> None:
    """Counted; a call's one log line is the client's (`provider request succeeded`, its
    reference the notification's id), so only a test key's send, which calls no client, is
    logged here, and brings along what it does once handed over
    (`settings.SIMULATED_SEND_HANDLERS`: its receipt, made and taken at once)."""
    notification = send.notification
    metrics.incr(f"tasks.deliver-{notification.notification_type}.success")
    if _simulated(send):
        logger.info(
            "notification handed to provider",
            extra={
                "notification_id": str(notification.id),
                "provider": send.provider,
                "simulated": True,
            },
        )
        notification.provider_reference = result.reference
        for handler in handlers_load(tuple(settings.SIMULATED_SEND_HANDLERS)):
            handler(notification=notification, provider=send.provider)


def sends_fail_over(finished: list[tuple[Send, CallResult]]) -> list[Send]:
    """After failed calls: a text goes at once to a different active provider (returned, its
    call on record as `started`, to be made); otherwise a retry is planned, or for an error SES
    will never accept, a technical failure."""
    again = []
    for send, result in finished:
        if result.error is None:
            continue
        notification = send.notification
        reason = f"{send.provider}: {result.error}"
        if notification.notification_type == NotificationType.EMAIL:
            error = result.error
            if isinstance(error, EmailClientException) and not error.retryable:
                notification_give_up(notification=notification, reason=f"ses: {error}")
            else:
                _retry_later(notification, reason=f"ses: {error}")
            continue
        provider_check_errors(provider=send.provider)
        other = None
        if len(send.tried) < PROVIDERS_PER_RUN:
            other = provider_choose(
                international=notification.international, exclude=frozenset(send.tried)
            )
        if other is None:
            _retry_later(notification, reason=reason)
        else:
            again.append(Send(notification=notification, provider=other, tried=set(send.tried)))
    attempts_start(again)
    return again


def _retry_later(notification: Notification, *, reason: str) -> None:
    if notification.notification_type == NotificationType.EMAIL:
        delay, most = settings.EMAIL_RETRY_DELAY_SECONDS, settings.EMAIL_MAX_RETRIES
    else:
        delay, most = settings.SMS_RETRY_DELAY_SECONDS, settings.SMS_MAX_RETRIES
    notification_retry_later(
        notification=notification, delay_seconds=delay, max_retries=most, reason=reason
    )


def deliveries_drain(
    *,
    notification_type: str,
    queryset: QuerySet[Notification] | None = None,
    until: float | None = None,
    on_more_waiting: Callable[[], None] | None = None,
) -> int:
    """Send the channel's waiting notifications (`deliveries_queued`, free and due at each
    claim) until a claim finds none and no call is in flight, or `until` (a
    `time.monotonic()`) has passed and the calls in flight are done. More is claimed whenever
    half the pool is free, and every `CLAIM_EVERY_SECONDS` while calls are in flight. Returns
    how many were handed over. `on_more_waiting` is called each time a claim comes back full
    (more is waiting than the pool takes at once: asking for another drain costs a cache round
    trip while one is on its way). Given a `queryset` instead, those of it that are claimable
    are claimed once and sent (a planned retry is not made at once again)."""
    once = queryset is not None
    if queryset is None:
        queryset = deliveries_queued(notification_type)
    queryset = queryset.filter(notification_type=notification_type)
    handed_over = 0

    def claim(want: int) -> list[Send]:
        sends = sends_claim(queryset, batch=want)
        if len(sends) == want and on_more_waiting is not None:
            on_more_waiting()
        return sends

    def record(finished: list[tuple[Send, CallResult]]) -> list[Send]:
        nonlocal handed_over
        handed_over += sends_record(finished)
        return sends_fail_over(finished)

    drain_run(
        claim=claim,
        call=lambda send: partial(call_timed, send_call(send)),
        record=record,
        release=sends_release,
        pool=lambda send: provider_pool(send.provider),
        capacity=settings.DELIVERY_CONCURRENCY,
        ended=lambda: until is not None and time.monotonic() >= until,
        once=once,
        # Held sends wait for places other qclusters give back: look again soon.
        take=lambda send: in_flight_take(send.provider),
        give_back=lambda send: in_flight_give_back(send.provider),
        claim_every=CLAIM_EVERY_SECONDS,
    )
    return handed_over


def sends_release(sends: Iterable[Send]) -> None:
    """Give back claimed sends whose call was never made: their `started` attempt goes (no
    provider heard of it) and their lease with it, so they are free for the next claim."""
    sends = list(sends)
    with transaction.atomic():
        SendAttempt.objects.filter(id__in=[send.attempt.id for send in sends]).delete()
        Notification.objects.filter(
            id__in=[send.notification.id for send in sends], status=NotificationStatus.CREATED
        ).update(lease_until=None)


def notification_record_queued_for(*, notification: Notification) -> None:
    if notification.retry_count == 0:
        seconds = (now() - notification.created_at).total_seconds()
        metrics.timing(f"tasks.deliver-{notification.notification_type}.queued-for", seconds)


def _simulated_call(provider: str) -> Callable[[], str | None]:
    """A test key's "call": no provider hears of it; answers what its answer would have given."""
    return lambda: str(uuid.uuid4()) if provider == SES else None  # SES names its message


def _log_failure(*, notification: Notification, provider: str, error: Exception, duration_ms: int):
    extra = {
        "notification_id": str(notification.id),
        "provider": provider,
        "to": recipient_mask(notification.recipient),
        "duration_ms": duration_ms,
        "status_code": getattr(error, "status_code", None),
    }
    if extra["status_code"] == 504:
        extra["timeout_s"] = settings.PROVIDER_TIMEOUT_SECONDS
    if isinstance(error, SmsClientResponseException) or (
        isinstance(error, EmailClientException) and error.retryable
    ):
        # A provider's bad few minutes must not page anyone: failover and retries handle it.
        logger.warning("provider send failed", extra={**extra, "error": error.message})
    else:
        logger.error("send failed", exc_info=error, extra=extra)


def notification_give_up(*, notification: Notification, reason: str) -> None:
    """No more tries: `technical-failure` (`sending/status.py`), logged."""
    notification_fail(notification_id=notification.id, reason=reason)
    logger.warning(
        "notification technical-failure",
        extra={"notification_id": str(notification.id), "reason": reason},
    )


def notification_retry_later(
    *, notification: Notification, delay_seconds: int, max_retries: int, reason: str
) -> None:
    """Wait `delay_seconds` for the next try, or give up after `max_retries` delayed retries."""
    if notification.retry_count >= max_retries:
        notification_give_up(
            notification=notification,
            reason=f"gave up after {notification.retry_count} retries: {reason}",
        )
        return
    due = now() + timedelta(seconds=delay_seconds)
    with transaction.atomic():
        row = _locked(notification.id, "status")
        planned = row is not None and row.status == NotificationStatus.CREATED
        if planned:
            # Out of the queue until it is due (the due-retry sweep queues it), or queued now.
            Notification.objects.filter(id=notification.id).update(
                retry_count=F("retry_count") + 1,
                next_attempt_at=due,
                lease_until=None,
                queued_at=now() if delay_seconds == 0 else None,
            )
    logger.info(
        "send retry planned",
        extra={
            "notification_id": str(notification.id),
            "retry": notification.retry_count + 1,
            "due": due.isoformat(),
            "reason": reason,
        },
    )
    if planned and delay_seconds == 0:
        notifications_queue_delivery(notifications=[notification])


def _sms_call(*, notification: Notification, provider: str) -> Callable[[], str | None]:
    if notification.key_type == KeyType.TEST:
        return _simulated_call(provider)
    client = sms_client(provider)
    return lambda: client.send_sms(
        to=notification.recipient,
        content=notification.content,
        reference=str(notification.id),
        international=notification.international,
        sender=notification.sender or None,
    )
