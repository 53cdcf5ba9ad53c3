"""The providers we start with, and changes to their settings: each one recorded with who or
what made it, and why."""

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


# name, display name, type, resting priority, supports international numbers
PROVIDERS = [
    ("firetext", "Firetext", "sms", 50, True),
    ("mmg", "MMG", "sms", 50, True),
    ("ses", "AWS SES", "email", 100, False),
]


def providers_seed(provider_model, history_model) -> None:
    """Create any missing provider (models passed in, so a migration can use it too)."""
    for name, display_name, kind, priority, international in PROVIDERS:
        provider, created = provider_model.objects.get_or_create(
            name=name,
            defaults={
                "display_name": display_name,
                "notification_type": kind,
                "priority": priority,
                "supports_international": international,
            },
        )
        if created:
            history_model.objects.create(
                provider=provider,
                priority=priority,
                active=True,
                changed_by="migration",
                reason="initial provider set-up",
            )
