"""Handing one notification to a provider: claim it, send it, record what happened, plan a retry.

A worker first claims the notification with a conditional update (only from `created`, only when
no other worker holds an unexpired lease and any retry is due), so two workers never both send it.
No transaction or row lock is held while a provider call is in flight.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifyproject import metrics
from notifyproject.broker import TASK_LEASE
from notifyproject.masking import recipient_mask
from sending.attempts import attempt_finish, attempt_start, attempt_unknown_hold
from sending.clients import email_client, sms_client
from sending.clients.exceptions import EmailClientException, SmsClientResponseException
from sending.failover import provider_check_errors, provider_choose
from sending.models import KeyType, Notification, NotificationStatus, ProviderDetails
from sending.services import notification_queue_delivery
from sending.status import (
    handlers_load,
    notification_fail,
    notification_mark_sent,
    notifications_lock,
)

logger = logging.getLogger(__name__)

now = timezone.now  # seam for tests

# A live worker never loses its claim; a worker that died releases it when the lease runs out.
LEASE = TASK_LEASE


SES = "ses"

# The chosen provider, then at once a different active one.
PROVIDERS_PER_RUN = 2


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    error: Exception | None = None


def _locked(notification_id, *fields: str) -> Notification | None:
    return next(iter(notifications_lock([notification_id], fields=fields).values()), None)


def notification_claim(*, notification_id: str) -> Notification | None:
    """Take the notification for this worker; None when it is not ours to send.

    Ours when it is `created`, no other worker holds an unexpired lease, and any planned retry is
    due. The row lock lasts only for this check, never during the provider call. When a dead
    worker's provider call has no outcome, it is held for a receipt instead (`sending/attempts.py`).
    """
    current = now()
    with transaction.atomic():
        row = _locked(notification_id)
        claimable = (
            row is not None
            and row.status == NotificationStatus.CREATED
            and (row.lease_until is None or row.lease_until < current)
            and (row.next_attempt_at is None or row.next_attempt_at <= current)
        )
        by_id = Notification.objects.filter(id=notification_id)
        hold_until = attempt_unknown_hold(notification=row) if claimable else None
        if hold_until is not None:
            # Out of the queue until the hold ends; the due-retry sweep queues it then.
            by_id.update(next_attempt_at=hold_until, queued_at=None, lease_until=None)
            return None
        if claimable:
            row.lease_until = current + LEASE
            by_id.update(lease_until=row.lease_until)
    if not claimable:
        logger.info("delivery skipped: not claimable", extra={"notification_id": notification_id})
        return None
    return row


def notification_record_queued_for(*, notification: Notification) -> None:
    if notification.retry_count == 0:
        seconds = (now() - notification.created_at).total_seconds()
        metrics.timing(f"tasks.deliver-{notification.notification_type}.queued-for", seconds)


def provider_attempt(
    *,
    notification: Notification,
    provider: str,
    call: Callable[[], str | None],
    simulated: bool = False,
) -> AttemptResult:
    """Make one provider call, on record as a `started` SendAttempt before it is made.

    When the provider takes it, the attempt's outcome and the hand-over (`sending/status.py`)
    commit together: a worker killed between two commits would leave an attempt marked sent on a
    notification still `created`, and it would go out again at once; killed before this one, the
    attempt stays `started` and the next claim holds it for a receipt. A failure's outcome is
    written and logged at the right level.

    A test key's send is `simulated`: `call` calls no provider, the attempt is on record as
    `simulated`, and once handed over what a test key's send brings along is done
    (`settings.SIMULATED_SEND_HANDLERS`: its receipt, made and taken at once)."""
    attempt = attempt_start(notification=notification, provider=provider)
    start = time.perf_counter()
    error = None
    try:
        reference = call()
    except Exception as err:  # every failure is recorded, retried and logged below
        error = err
    duration_ms = round((time.perf_counter() - start) * 1000)
    if error is not None:
        attempt_finish(attempt=attempt, error=error, duration_ms=duration_ms)
        _log_failure(
            notification=notification, provider=provider, error=error, duration_ms=duration_ms
        )
        return AttemptResult(ok=False, error=error)
    with transaction.atomic():
        attempt_finish(attempt=attempt, error=None, duration_ms=duration_ms, simulated=simulated)
        notification_mark_sent(
            notification_id=notification.id, provider=provider, reference=reference
        )
    metrics.incr(f"tasks.deliver-{notification.notification_type}.success")
    logger.info(
        "notification handed to provider",
        extra={
            "notification_id": str(notification.id),
            "provider": provider,
            "simulated": simulated,
        },
    )
    if simulated:
        notification.provider_reference = reference
        for handler in handlers_load(tuple(settings.SIMULATED_SEND_HANDLERS)):
            handler(notification=notification, provider=provider)
    return AttemptResult(ok=True)


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
        notification_queue_delivery(notification=notification)


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


def notification_deliver_sms(*, notification_id: str) -> None:
    """Claim a text, try the chosen SMS provider and at once a different one (failover), then
    hand it over, or plan a retry."""
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return
    notification_record_queued_for(notification=notification)
    tried: set[str] = set()
    reason = "no active SMS provider"
    for _ in range(PROVIDERS_PER_RUN):
        provider = provider_choose(
            international=notification.international, exclude=frozenset(tried)
        )
        if provider is None:
            break
        tried.add(provider)
        result = provider_attempt(
            notification=notification,
            provider=provider,
            call=_sms_call(notification=notification, provider=provider),
            simulated=notification.key_type == KeyType.TEST,
        )
        if result.ok:
            return
        reason = f"{provider}: {result.error}"
        provider_check_errors(provider=provider)
    notification_retry_later(
        notification=notification,
        delay_seconds=settings.SMS_RETRY_DELAY_SECONDS,
        max_retries=settings.SMS_MAX_RETRIES,
        reason=reason,
    )


def notification_deliver_email(*, notification_id: str) -> None:
    """Claim an email, send it through SES, then hand it over, give up (an error SES will
    never accept) or plan a retry."""
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return
    notification_record_queued_for(notification=notification)
    retry = {
        "notification": notification,
        "delay_seconds": settings.EMAIL_RETRY_DELAY_SECONDS,
        "max_retries": settings.EMAIL_MAX_RETRIES,
    }
    if not ProviderDetails.objects.filter(name=SES, active=True).exists():
        notification_retry_later(**retry, reason="SES is not active")
        return
    if notification.key_type == KeyType.TEST:
        provider_attempt(
            notification=notification,
            provider=SES,
            call=_simulated_call(SES),
            simulated=True,
        )
        return
    client = email_client()
    result = provider_attempt(
        notification=notification,
        provider=client.name,
        call=lambda: client.send_email(
            to=notification.recipient,
            subject=notification.subject,
            body=notification.content,
            reference=str(notification.id),
            reply_to=notification.sender or None,
            unsubscribe_url=notification.unsubscribe_url,
        ),
    )
    if result.ok:
        return
    if isinstance(result.error, EmailClientException) and not result.error.retryable:
        notification_give_up(notification=notification, reason=f"ses: {result.error}")
    else:
        notification_retry_later(**retry, reason=f"ses: {result.error}")
