"""The figures on the operator's front page: each one an indexed read, none a full count."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.urls import reverse

from callbacks.models import Receipt, ReceiptState
from sending.failover import provider_error_rate, provider_slow_share
from sending.models import (
    KeyType,
    Notification,
    NotificationStatus,
    NotificationType,
    ProviderDetails,
    ProviderDetailsHistory,
)
from sending.selectors import Backlog, notification_backlog
from webhooks.models import CallbackEvent, CallbackState

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class ProviderFigures:
    provider: ProviderDetails
    errors: int
    attempts: int
    slow_share: float
    slow_judged: int
    last_change: ProviderDetailsHistory | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.attempts if self.attempts else None


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    status_counts: list[tuple[str, int]]
    backlog: Backlog
    backlog_ages: dict[str, float | None]
    providers: list[ProviderFigures]
    receipts_waiting: dict[str, int]
    error_window_seconds: int
    # (label, count, list URL) of anything else waiting for an operator.
    more_waiting: list[tuple[str, int, str]]


def notification_status_counts(*, since: datetime) -> list[tuple[str, int]]:
    """Notifications created since `since`, by status, every status listed (zeros too), a test
    key's left out. `status IN (…) AND created_at >= …` reads the (status, created_at) index,
    which carries the key type, not the table."""
    counted = dict(
        Notification.objects.filter(status__in=NotificationStatus.values, created_at__gte=since)
        .exclude(key_type=KeyType.TEST)
        .order_by()
        .values_list("status")
        .annotate(count=Count("*"))  # COUNT(*): an index-only scan, no row read
    )
    return [(status, counted.get(status, 0)) for status in NotificationStatus.values]


def provider_figures_list() -> list[ProviderFigures]:
    figures = []
    for provider in ProviderDetails.objects.filter(notification_type=NotificationType.SMS).order_by(
        "name"
    ):
        errors, attempts = provider_error_rate(provider=provider.name)
        share, judged = provider_slow_share(provider=provider.name)
        figures.append(
            ProviderFigures(
                provider=provider,
                errors=errors,
                attempts=attempts,
                slow_share=share,
                slow_judged=judged,
                last_change=provider.history.first(),
            )
        )
    return figures


def _counted_by_state(queryset, states) -> dict[str, int]:
    """How many rows of `queryset` are in each of `states` (zeros too), read from its state
    index: COUNT(*), no row read."""
    counted = dict(
        queryset.filter(state__in=list(states))
        .order_by()
        .values_list("state")
        .annotate(count=Count("*"))
    )
    return {state: counted.get(state, 0) for state in states}


def receipts_waiting() -> dict[str, int]:
    """Receipts an operator may have to replay, by state."""
    waiting = (ReceiptState.FAILED, ReceiptState.RECEIVED, ReceiptState.GIVEN_UP)
    return _counted_by_state(Receipt.objects, waiting)


def callbacks_waiting() -> list[tuple[str, int, str]]:
    """Status callbacks that gave up or are retrying, each with its filtered list (the
    (state, created_at) index)."""
    labels = {
        CallbackState.GIVEN_UP: "Callbacks given up",
        CallbackState.RETRYING: "Callbacks retrying",
    }
    counted = _counted_by_state(CallbackEvent.objects, labels)
    changelist = reverse("admin:webhooks_callbackevent_changelist")
    return [
        (labels[state], count, f"{changelist}?state__exact={state}")
        for state, count in counted.items()
    ]


def dashboard_read(*, now: datetime) -> Dashboard:
    backlog = notification_backlog()
    return Dashboard(
        now=now,
        status_counts=notification_status_counts(since=now - DAY),
        backlog=backlog,
        backlog_ages=backlog.ages(now),
        providers=provider_figures_list(),
        receipts_waiting=receipts_waiting(),
        error_window_seconds=settings.FAILOVER_ERROR_WINDOW_SECONDS,
        more_waiting=callbacks_waiting(),
    )
