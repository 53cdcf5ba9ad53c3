"""Provider settings changes: each one is recorded with who or what made it, and why."""

from django.db import transaction

from notifyproject import metrics
from sending.models import ProviderDetails, ProviderDetailsHistory


def provider_update(
    *, provider: ProviderDetails, priority: int, active: bool, changed_by: str, reason: str
) -> ProviderDetails:
    with transaction.atomic():
        ProviderDetails.objects.filter(pk=provider.pk).update(priority=priority, active=active)
        provider.priority, provider.active = priority, active
        ProviderDetailsHistory.objects.create(
            provider=provider,
            priority=priority,
            active=active,
            changed_by=changed_by,
            reason=reason,
        )
    metrics.gauge(f"providers.{provider.name}.priority", priority)
    return provider
