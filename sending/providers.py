"""The providers (SMS ones from `settings.SMS_PROVIDERS`, the one registry), and changes to
their settings: each one recorded with who or what made it, and why."""

from dataclasses import dataclass
from functools import partial

from django.conf import settings
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
    # Sent once the caller's transaction (a failover move's, the resting split's) commits.
    transaction.on_commit(partial(metrics.gauge, f"providers.{provider.name}.priority", priority))
    return provider


@dataclass(frozen=True)
class SmsProvider:
    """An entry of `settings.SMS_PROVIDERS`. The client and parsers are dotted paths: the
    receipts app imports its parsers, `sending/` its client, each from here."""

    name: str
    display_name: str
    international: bool
    client: str
    receipt_parser: str
    inbound_parser: str = ""  # none: it takes no received texts

    @property
    def settings_prefix(self) -> str:
        """Its settings are named `<prefix>_URL`, `<prefix>_RECEIPT_AUTH`, …"""
        return self.name.upper()


SMS_PROVIDERS = [SmsProvider(name=name, **entry) for name, entry in settings.SMS_PROVIDERS.items()]

# name, display name, type, resting priority, supports international numbers
PROVIDERS = [
    *(
        (
            p.name,
            p.display_name,
            "sms",
            settings.SMS_RESTING_PRIORITIES.get(p.name, 0),
            p.international,
        )
        for p in SMS_PROVIDERS
    ),
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
