"""Which SMS provider gets a text, and how priorities move when a provider has a bad few minutes.

Every move is bounded 0–100, happens under a row lock on the providers, at most once a minute
(for the automatic moves), and is written to the providers' history with the reason.
"""

import logging
import random
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from sending.models import (
    KeyType,
    Notification,
    NotificationStatus,
    NotificationType,
    ProviderDetails,
    ProviderDetailsHistory,
    SendAttempt,
)
from sending.providers import provider_update
from sending.text_rules import field_fit

logger = logging.getLogger(__name__)

# Seams for tests: the random choice and the clock.
rng = random.Random()
now = timezone.now

PRIORITY_STEP = 10
MOVE_INTERVAL = timedelta(minutes=1)
TEND_BACK_AFTER = timedelta(minutes=15)
SLOW_WINDOW = timedelta(minutes=15)
SLOW_AFTER = timedelta(minutes=5)
SLOW_SHARE = 0.15
# Fewer texts than this in the window say nothing about a provider's speed.
SLOW_MIN_TEXTS = 10


def sms_providers_active() -> list[tuple[str, int, bool]]:
    """(name, priority, supports international) of each active SMS provider, by name: read once
    for a drain's whole claim."""
    active = ProviderDetails.objects.filter(notification_type=NotificationType.SMS, active=True)
    return sorted(active.values_list("name", "priority", "supports_international"))


def provider_pick(
    providers: list[tuple[str, int, bool]],
    *,
    international: bool = False,
    exclude: frozenset[str] = frozenset(),
) -> str | None:
    """One of `providers` (`sms_providers_active`) at random, weighted by priority; None when
    none fits.

    A provider at priority 0 is still chosen when it is the only active one left (failover
    must reach a different provider if one is active at all).
    """
    fitting = [
        (name, priority)
        for name, priority, abroad in providers
        if name not in exclude and (abroad or not international)
    ]
    if not fitting:
        return None
    names, weights = zip(*fitting, strict=True)
    if sum(weights) == 0:
        return rng.choice(names)
    return rng.choices(names, weights=weights)[0]


def provider_choose(
    *, international: bool = False, exclude: frozenset[str] = frozenset()
) -> str | None:
    """An active SMS provider at random, weighted by priority (`provider_pick`)."""
    return provider_pick(sms_providers_active(), international=international, exclude=exclude)


def _sms_providers_locked() -> dict[str, ProviderDetails]:
    locked = ProviderDetails.objects.select_for_update().filter(
        notification_type=NotificationType.SMS
    )
    return {provider.name: provider for provider in locked.order_by("name")}


def _moved_recently(names: list[str]) -> bool:
    automatic = Q(changed_by__startswith="failover:") | Q(changed_by__startswith="schedule:")
    return (
        ProviderDetailsHistory.objects.filter(automatic)
        .filter(provider__name__in=names, created_at__gte=now() - MOVE_INTERVAL)
        .exists()
    )


def provider_priority_shift(*, away_from: str, changed_by: str, reason: str) -> bool:
    """Move up to 10 points from one SMS provider to the others; False when nothing moved."""
    with transaction.atomic():
        providers = _sms_providers_locked()
        loser = providers.get(away_from)
        others = [p for name, p in providers.items() if name != away_from and p.active]
        if loser is None or not others or _moved_recently(list(providers)):
            return False
        gainer = min(others, key=lambda p: p.priority)
        step = min(PRIORITY_STEP, loser.priority, 100 - gainer.priority)
        if step <= 0:
            return False
        # Each side's history names the provider that failed, so neither reads like the other.
        for provider, priority, why in (
            (
                loser,
                loser.priority - step,
                f"{loser.name}: {reason}; {step} points to {gainer.name}",
            ),
            (gainer, gainer.priority + step, f"{step} points from {loser.name} ({reason})"),
        ):
            provider_update(
                provider=provider,
                priority=priority,
                active=provider.active,
                changed_by=changed_by,
                reason=field_fit(ProviderDetailsHistory, "reason", why),
            )
    logger.warning(
        "provider priority moved",
        extra={"provider": away_from, "gainer": gainer.name, "points": step, "reason": reason},
    )
    return True


CALLED_OUTCOMES = [o for o in SendAttempt.Outcome.values if o != SendAttempt.Outcome.SIMULATED]


def _attempts_in_error_window(provider: str):
    window = timedelta(seconds=settings.FAILOVER_ERROR_WINDOW_SECONDS)
    # `outcome IN (every outcome)` lets the (provider, outcome, started_at) index range-scan the
    # window; without it PostgreSQL reads every attempt of the provider. A test key's simulated
    # sends never reached the provider, so they are left out.
    return SendAttempt.objects.filter(
        provider=provider,
        outcome__in=CALLED_OUTCOMES,
        started_at__gte=now() - window,
    )


def provider_error_rate(*, provider: str) -> tuple[int, int]:
    """The provider's errors and all its attempts in the failover window (for the console)."""
    counts = _attempts_in_error_window(provider).aggregate(
        errors=Count("id", filter=Q(outcome=SendAttempt.Outcome.ERROR)), attempts=Count("id")
    )
    return counts["errors"], counts["attempts"]


def provider_check_errors(*, provider: str) -> bool:
    """After an error: too many errors in the window move priority away from the provider."""
    errors = _attempts_in_error_window(provider).filter(outcome=SendAttempt.Outcome.ERROR).count()
    if errors < settings.FAILOVER_ERROR_THRESHOLD:
        return False
    return provider_priority_shift(
        away_from=provider,
        changed_by="failover:errors",
        reason=f"{errors} errors in {settings.FAILOVER_ERROR_WINDOW_SECONDS} s",
    )


def providers_tend_back() -> list[str]:
    """Scheduled every 5 minutes: once nothing changed for 15 minutes, move each SMS provider
    up to 10 points back towards its resting priority. Returns the names moved."""
    with transaction.atomic():
        providers = _sms_providers_locked()
        last_change = ProviderDetailsHistory.objects.filter(
            provider__name__in=list(providers)
        ).first()
        if last_change and last_change.created_at > now() - TEND_BACK_AFTER:
            return []
        moved = _towards_resting(
            providers,
            step=PRIORITY_STEP,
            changed_by="schedule:tend-back",
            reason=lambda target: f"back towards the resting split ({target})",
        )
    if moved:
        logger.info("provider priorities tended back", extra={"providers": ",".join(moved)})
    return moved


def providers_rest(*, changed_by: str, reason: str) -> list[str]:
    """Put every SMS provider back on its resting priority at once (an operator's action).
    Returns the names moved."""
    with transaction.atomic():
        moved = _towards_resting(
            _sms_providers_locked(), step=100, changed_by=changed_by, reason=lambda _: reason
        )
    if moved:
        logger.warning(
            "provider priorities reset to the resting split",
            extra={"providers": ",".join(moved), "changed_by": changed_by},
        )
    return moved


def _towards_resting(
    providers: dict[str, ProviderDetails],
    *,
    step: int,
    changed_by: str,
    reason: Callable[[int], str],
) -> list[str]:
    """Move each provider up to `step` points towards its resting priority (rows locked)."""
    moved = []
    for name, provider in providers.items():
        target = settings.SMS_RESTING_PRIORITIES.get(name, provider.priority)
        gap = target - provider.priority
        if gap == 0:
            continue
        provider_update(
            provider=provider,
            priority=provider.priority + max(-step, min(step, gap)),
            active=provider.active,
            changed_by=changed_by,
            reason=reason(target),
        )
        moved.append(name)
    return moved


def provider_slow_share(*, provider: str) -> tuple[float, int]:
    """Share of the provider's texts sent in the last 15 minutes that took over 5 minutes to be
    delivered, or were sent over 5 minutes ago and still are not; and how many texts that was."""
    current = now()
    sent = Notification.objects.filter(
        notification_type=NotificationType.SMS, sent_by=provider, sent_at__gte=current - SLOW_WINDOW
    ).exclude(key_type=KeyType.TEST)  # never sent: their receipts come at once
    total = sent.count()
    if total == 0:
        return 0.0, 0
    in_flight = (NotificationStatus.SENDING, NotificationStatus.PENDING)
    slow_count = sent.filter(
        Q(status__in=in_flight, sent_at__lt=current - SLOW_AFTER)
        # `updated_at` of a delivered text is when its receipt arrived: final statuses never change.
        | Q(status=NotificationStatus.DELIVERED, updated_at__gt=F("sent_at") + SLOW_AFTER)
    ).count()
    return slow_count / total, total


def providers_check_slow_delivery() -> str | None:
    """Scheduled every minute: lower a provider whose deliveries are slow while another is not."""
    active = list(
        ProviderDetails.objects.filter(notification_type=NotificationType.SMS, active=True)
        .order_by("name")
        .values_list("name", flat=True)
    )
    shares = {name: provider_slow_share(provider=name) for name in active}
    slow = {
        n for n, (share, total) in shares.items() if total >= SLOW_MIN_TEXTS and share >= SLOW_SHARE
    }
    if not slow or len(slow) == len(active):
        return None
    name = max(slow, key=lambda n: shares[n][0])
    share, total = shares[name]
    moved = provider_priority_shift(
        away_from=name,
        changed_by="schedule:slow-delivery",
        reason=f"{share:.0%} of {total} texts slower than 5 minutes",
    )
    return name if moved else None
