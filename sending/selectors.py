"""Reads: notifications for operators (what is stuck, and for how long); services by name or id."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sending.delivery import LEASE
from sending.models import Notification, NotificationStatus, Service


@dataclass(frozen=True)
class Backlog:
    """The oldest notification still `created`, and the oldest claim not yet settled (a worker
    took it and has not yet marked it sent or planned a retry); None when there is none."""

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
    """Two index reads: (status, created_at) and the partial index of claims."""
    created = Notification.objects.filter(status=NotificationStatus.CREATED)
    oldest_created = created.order_by("created_at").values_list("created_at", flat=True).first()
    oldest_lease = (
        created.filter(lease_until__isnull=False)
        .order_by("lease_until")
        .values_list("lease_until", flat=True)
        .first()
    )
    return Backlog(
        oldest_created_at=oldest_created,
        oldest_claimed_at=None if oldest_lease is None else oldest_lease - LEASE,
    )


def service_find(reference: str) -> Service | None:
    """The service with this id, or else with this name (as operators type either)."""
    reference = reference.strip()
    try:
        found = Service.objects.filter(id=uuid.UUID(reference)).first()
    except ValueError:
        found = None
    return found or Service.objects.filter(name=reference).first()
