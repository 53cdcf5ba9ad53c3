"""Reads: notifications for operators (what is stuck, and for how long: /healthz and the console
both show it); services by name or id."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min

from sending.engine import LEASE, deliveries_waiting
from sending.models import (
    Notification,
    NotificationStatus,
    NotificationType,
    SendAttempt,
    Service,
)


@dataclass(frozen=True)
class Backlog:
    """None where there is none.

    `oldest_created_at`: the oldest notification still `created` that waits for no planned retry
    (nor the hold after an unknown outcome): how far behind sending is.
    `oldest_claimed_at`: the oldest claim not yet settled: a worker took the notification and has
    neither marked it sent nor planned a retry (its lease is still set), or a provider call of a
    still-`created` notification has no outcome (its worker died mid-call).
    """

    oldest_created_at: datetime | None
    oldest_claimed_at: datetime | None

    def ages(self, now: datetime) -> dict[str, float | None]:
        """Seconds since each, as /healthz reports them."""

        def age(moment: datetime | None) -> float | None:
            return None if moment is None else round((now - moment).total_seconds(), 1)

        return {
            "oldest_created_seconds": age(self.oldest_created_at),
            "oldest_claim_seconds": age(self.oldest_claimed_at),
        }


def notification_backlog() -> Backlog:
    """Three reads of one partial index each (notification_created_unplanned,
    notification_claimed, attempt_unsettled)."""
    created = Notification.objects.filter(status=NotificationStatus.CREATED)
    oldest_created = (
        created.filter(next_attempt_at__isnull=True)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    oldest_lease = (
        created.filter(lease_until__isnull=False)
        .order_by("lease_until")
        .values_list("lease_until", flat=True)
        .first()
    )
    oldest_call = (
        SendAttempt.objects.filter(
            outcome=SendAttempt.Outcome.STARTED, notification__status=NotificationStatus.CREATED
        )
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    claims = [moment for moment in (oldest_call, oldest_lease and oldest_lease - LEASE) if moment]
    return Backlog(oldest_created_at=oldest_created, oldest_claimed_at=min(claims, default=None))


@dataclass(frozen=True)
class ChannelDrain:
    """A channel's delivery drain (`sending/engine.py`): notifications waiting for it (queued,
    free and due; counted up to a cap) and when the oldest was queued."""

    channel: str
    waiting: int
    capped: bool
    oldest_queued_at: datetime | None


@dataclass(frozen=True)
class InFlight:
    """Provider calls made and not yet answered (`started` attempts of `created` notifications;
    a call whose drain died stays here until its hold ends)."""

    provider: str
    calls: int
    oldest_started_at: datetime | None


def delivery_drains_read(*, cap: int) -> tuple[list[ChannelDrain], list[InFlight]]:
    """What /healthz and the console show of the engine: per channel, per provider."""
    drains = []
    for channel in NotificationType.values:
        waiting = deliveries_waiting(channel).order_by()
        count = waiting[: cap + 1].count()
        oldest = waiting.order_by("queued_at").values_list("queued_at", flat=True).first()
        drains.append(ChannelDrain(channel, min(count, cap), count > cap, oldest))
    calls = (
        SendAttempt.objects.filter(
            outcome=SendAttempt.Outcome.STARTED, notification__status=NotificationStatus.CREATED
        )
        .values("provider")
        .annotate(calls=Count("id"), oldest=Min("started_at"))
        .order_by("provider")
    )
    in_flight = [InFlight(row["provider"], row["calls"], row["oldest"]) for row in calls]
    return drains, in_flight


def service_find(reference: str) -> Service | None:
    """The service with this id, or else with this name (as operators type either)."""
    reference = reference.strip()
    try:
        found = Service.objects.filter(id=uuid.UUID(reference)).first()
    except ValueError:
        found = None
    return found or Service.objects.filter(name=reference).first()
