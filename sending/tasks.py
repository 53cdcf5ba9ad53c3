"""Django Q tasks. They take a notification id (text) and stay thin: the work is in delivery.py,
failover.py and sweeps.py."""

from django.conf import settings

from sending import sweeps
from sending.clients import email_client, sms_client
from sending.clients.exceptions import EmailClientException
from sending.delivery import (
    notification_claim,
    notification_give_up,
    notification_record_queued_for,
    notification_record_sent,
    notification_retry_later,
    provider_attempt,
)
from sending.failover import (
    provider_check_errors,
    provider_choose,
    providers_check_slow_delivery,
    providers_tend_back,
)
from sending.idempotency import idempotency_keys_sweep
from sending.models import ProviderDetails

# The chosen provider, then at once a different active one.
PROVIDERS_PER_RUN = 2


def deliver_sms(notification_id: str) -> None:
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
        client = sms_client(provider)
        result = provider_attempt(
            notification=notification,
            provider=provider,
            call=lambda client=client: client.send_sms(
                to=notification.recipient,
                content=notification.content,
                reference=str(notification.id),
                international=notification.international,
            ),
        )
        if result.ok:
            notification_record_sent(
                notification=notification, provider=provider, reference=result.reference
            )
            return
        reason = f"{provider}: {result.error}"
        provider_check_errors(provider=provider)
    notification_retry_later(
        notification=notification,
        delay_seconds=settings.SMS_RETRY_DELAY_SECONDS,
        max_retries=settings.SMS_MAX_RETRIES,
        reason=reason,
    )


def deliver_email(notification_id: str) -> None:
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return
    notification_record_queued_for(notification=notification)
    retry = {
        "notification": notification,
        "delay_seconds": settings.EMAIL_RETRY_DELAY_SECONDS,
        "max_retries": settings.EMAIL_MAX_RETRIES,
    }
    if not ProviderDetails.objects.filter(name="ses", active=True).exists():
        notification_retry_later(**retry, reason="SES is not active")
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
        ),
    )
    if result.ok:
        notification_record_sent(
            notification=notification, provider=client.name, reference=result.reference
        )
    elif isinstance(result.error, EmailClientException) and not result.error.retryable:
        notification_give_up(notification=notification, reason=f"ses: {result.error}")
    else:
        notification_retry_later(**retry, reason=f"ses: {result.error}")


# Scheduled (see the migration that creates the schedules).
def queue_due_retries() -> int:
    return sweeps.notifications_queue_due_retries()


def replay_notifications() -> int:
    return sweeps.notifications_replay()


def timeout_notifications() -> int:
    return sweeps.notifications_timeout()


def tend_back_priorities() -> list[str]:
    return providers_tend_back()


def check_slow_delivery() -> str | None:
    return providers_check_slow_delivery()


def sweep_idempotency_keys() -> int:
    return idempotency_keys_sweep()
