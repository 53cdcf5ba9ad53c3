"""The figures on the operator's front page: each one an indexed read, none a full count."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.status import Stat

from notifyproject.broker import broker_oldest_queued_at
from receipts.models import Receipt, ReceiptState
from sending.failover import CALLED_OUTCOMES, provider_slow_share
from sending.models import (
    KeyType,
    Notification,
    NotificationStatus,
    NotificationType,
    ProviderDetails,
    ProviderDetailsHistory,
    SendAttempt,
)
from sending.selectors import Backlog, delivery_drains_read, notification_backlog
from webhooks.models import CallbackEvent, CallbackState

DAY = timedelta(hours=24)
# The two windows a provider's errors are shown over: what is happening, and the last hour.
PROVIDER_WINDOWS = (timedelta(minutes=5), timedelta(minutes=60))
# A provider is failing when at least this share of its calls in the last 5 minutes failed
# (and at least FAILOVER_ERROR_THRESHOLD of them, or every call when there were fewer).
FAILING_SHARE = 0.5
# Counts of waiting work stop here: an index range, never a whole-table count.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class ProviderWindow:
    """A provider's calls and errors over one window (the last 5 or 60 minutes)."""

    minutes: int
    errors: int
    attempts: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.attempts if self.attempts else None


@dataclass(frozen=True)
class ProviderFigures:
    provider: ProviderDetails
    windows: tuple[ProviderWindow, ...]
    slow_share: float
    slow_judged: int
    last_change: ProviderDetailsHistory | None
    # healthy, failing, taken out, lowered, tended back: with the reason naming the provider.
    state: str
    reason: str

    @property
    def alarming(self) -> bool:
        return self.state in ("failing", "taken out")


@dataclass(frozen=True)
class Drain:
    """Work waiting for the workers: how much, how old the oldest, and whether that is trouble."""

    name: str
    waiting: int
    oldest_at: datetime | None
    alarm: str  # empty when all is well: else what is wrong, for the operator
    url: str = ""
    capped: bool = False


@dataclass(frozen=True)
class Workers:
    """The Django Q clusters seen alive in the last few seconds (each reports itself)."""

    clusters: list[dict]

    @property
    def alive(self) -> int:
        return sum(cluster["workers"] for cluster in self.clusters)


@dataclass(frozen=True)
class PlannedRetries:
    count: int
    next_at: datetime | None
    capped: bool


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    # (status, texts, emails) made in the last 24 hours
    status_counts: list[tuple[str, int, int]]
    backlog: Backlog
    backlog_ages: dict[str, float | None]
    workers: Workers
    drains: list[Drain]
    retries: PlannedRetries
    providers: list[ProviderFigures]
    receipts_waiting: dict[str, int]
    error_window_seconds: int
    # (label, count, list URL) of anything else waiting for an operator.
    more_waiting: list[tuple[str, int, str]]


def notification_status_counts(*, since: datetime) -> list[tuple[str, int, int]]:
    """Notifications created since `since`, by status and channel, every status listed (zeros
    too), a test key's left out. `status IN (…) AND created_at >= …` reads the (status,
    created_at, type) index only, which carries the key type."""
    counted = {
        (status, kind): count
        for status, kind, count in Notification.objects.filter(
            status__in=NotificationStatus.values, created_at__gte=since
        )
        .exclude(key_type=KeyType.TEST)
        .order_by()
        .values_list("status", "notification_type")
        .annotate(count=Count("*"))
    }
    return [
        (status, counted.get((status, "sms"), 0), counted.get((status, "email"), 0))
        for status in NotificationStatus.values
    ]


def provider_window_counts(*, provider: str, since: datetime) -> tuple[int, int]:
    """The provider's errors and calls since `since` (the (provider, outcome, started_at)
    index: `outcome IN (every outcome of a real call)` lets it range-scan; a test key's
    simulated sends never reached the provider)."""
    counts = SendAttempt.objects.filter(
        provider=provider, outcome__in=CALLED_OUTCOMES, started_at__gte=since
    ).aggregate(
        errors=Count("id", filter=Q(outcome=SendAttempt.Outcome.ERROR)), attempts=Count("id")
    )
    return counts["errors"], counts["attempts"]


def provider_state(
    *, provider: ProviderDetails, recent: ProviderWindow, last_change, resting: int
) -> tuple[str, str]:
    """What an operator should read first about a provider, and why, naming it."""
    name = provider.display_name
    if not provider.active or provider.priority == 0:
        why = last_change.reason if last_change else "set so"
        flag = "inactive" if not provider.active else "priority 0"
        return "taken out", f"{name} is {flag}: {why}"
    needed = min(settings.FAILOVER_ERROR_THRESHOLD, max(recent.attempts, 1))
    if recent.errors >= needed and recent.error_rate is not None:
        if recent.error_rate >= FAILING_SHARE:
            return "failing", (
                f"{name}: {recent.errors} errors of {recent.attempts} calls "
                f"in the last {recent.minutes} minutes"
            )
    if provider.priority < resting:
        why = last_change.reason if last_change else ""
        if last_change and last_change.changed_by == "schedule:tend-back":
            return "tended back", f"{name} at {provider.priority}, back towards {resting}: {why}"
        return "lowered", f"{name} lowered to {provider.priority} (resting {resting}): {why}"
    return "healthy", ""


def provider_figures_list(*, now: datetime) -> list[ProviderFigures]:
    figures = []
    sms = ProviderDetails.objects.filter(notification_type=NotificationType.SMS).order_by("name")
    for provider in sms:
        windows = tuple(
            ProviderWindow(
                int(window.total_seconds() // 60),
                *provider_window_counts(provider=provider.name, since=now - window),
            )
            for window in PROVIDER_WINDOWS
        )
        share, judged = provider_slow_share(provider=provider.name)
        last_change = provider.history.first()
        resting = settings.SMS_RESTING_PRIORITIES.get(provider.name, provider.priority)
        state, reason = provider_state(
            provider=provider, recent=windows[0], last_change=last_change, resting=resting
        )
        figures.append(
            ProviderFigures(
                provider=provider,
                windows=windows,
                slow_share=share,
                slow_judged=judged,
                last_change=last_change,
                state=state,
                reason=reason,
            )
        )
    return figures


def workers_read() -> Workers:
    """Each running cluster reports itself every few seconds through the broker's cache; one
    that stopped reporting is gone."""
    try:
        stats = Stat.get_all(get_broker()) or []
    except Exception:  # the cache unreachable: shown as no cluster seen
        stats = []
    clusters = [
        {
            "host": stat.host,
            "cluster": str(stat.cluster_id),
            "status": stat.status,
            "workers": len(stat.workers or ()),
            "uptime_seconds": round(stat.uptime()),
        }
        for stat in stats
    ]
    return Workers(clusters=sorted(clusters, key=lambda c: (c["host"], c["cluster"])))


def _capped_count(queryset) -> tuple[int, bool]:
    count = queryset.order_by()[: COUNT_CAP + 1].count()
    return min(count, COUNT_CAP), count > COUNT_CAP


def _age_alarm(oldest: datetime | None, now: datetime, limit: int, what: str) -> str:
    if oldest is None or (now - oldest).total_seconds() <= limit:
        return ""
    return f"{what} has waited {(now - oldest).total_seconds():.0f} s (limit {limit} s)"


def drains_read(*, now: datetime, backlog: Backlog, workers: Workers) -> list[Drain]:
    """Deliveries due, tasks in the broker, each channel's drain (waiting, oldest waiting) and
    the calls in flight per provider, status callbacks due: each with its oldest."""
    limit = settings.HEALTH_CREATED_AGE_LIMIT_SECONDS
    notifications = reverse("admin:sending_notification_changelist")
    due = Notification.objects.filter(status=NotificationStatus.CREATED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    waiting, capped = _capped_count(due)
    alarm = _age_alarm(backlog.oldest_created_at, now, limit, "the oldest notification due")
    if waiting and not workers.alive:
        alarm = "no worker is running: nothing will be sent"
    drains = [
        Drain(
            "deliveries due",
            waiting,
            backlog.oldest_created_at,
            alarm,
            f"{notifications}?status__exact=created",
            capped,
        )
    ]
    broker = get_broker()
    try:
        queued, head = broker.queue_size(), broker_oldest_queued_at(broker)
        alarm = _age_alarm(head, now, limit, "the oldest task in the broker")
    except Exception as err:  # the broker unreachable: that is the alarm
        queued, head, alarm = 0, None, f"the broker does not answer: {err.__class__.__name__}"
    if queued and not workers.alive:
        alarm = "no worker is running: tasks are not taken"
    drains.append(Drain("tasks in the broker", queued, head, alarm))
    channels, in_flight = delivery_drains_read(cap=COUNT_CAP)
    for channel in channels:
        drains.append(
            Drain(
                f"{channel.channel} waiting for a drain",
                channel.waiting,
                channel.oldest_queued_at,
                _age_alarm(channel.oldest_queued_at, now, limit, f"the oldest {channel.channel}"),
                capped=channel.capped,
            )
        )
    for calls in in_flight:
        drains.append(
            Drain(f"calls in flight to {calls.provider}", calls.calls, calls.oldest_started_at, "")
        )
    unfinished = CallbackEvent.objects.filter(
        state__in=[CallbackState.PENDING, CallbackState.RETRYING, CallbackState.SENDING],
        next_attempt_at__lte=now,
    )
    waiting, capped = _capped_count(unfinished)
    oldest = unfinished.aggregate(oldest=Min("next_attempt_at"))["oldest"]
    alarm = _age_alarm(oldest, now, limit, "the oldest status callback due")
    events = reverse("admin:webhooks_callbackevent_changelist")
    drains.append(
        Drain("status callbacks due", waiting, oldest, alarm, f"{events}?state__exact=pending")
    )
    return drains


def retries_planned(*, now: datetime) -> PlannedRetries:
    """Notifications waiting for a planned retry, and when the next one is due (the
    `notification_retry_due` index)."""
    planned = Notification.objects.filter(
        status=NotificationStatus.CREATED, next_attempt_at__gt=now, queued_at__isnull=True
    )
    count, capped = _capped_count(planned)
    next_at = planned.aggregate(next_at=Min("next_attempt_at"))["next_at"]
    return PlannedRetries(count=count, next_at=next_at, capped=capped)


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
    workers = workers_read()
    return Dashboard(
        now=now,
        status_counts=notification_status_counts(since=now - DAY),
        backlog=backlog,
        backlog_ages=backlog.ages(now),
        workers=workers,
        drains=drains_read(now=now, backlog=backlog, workers=workers),
        retries=retries_planned(now=now),
        providers=provider_figures_list(now=now),
        receipts_waiting=receipts_waiting(),
        error_window_seconds=settings.FAILOVER_ERROR_WINDOW_SECONDS,
        more_waiting=callbacks_waiting(),
    )


def notifications_by_hour(*, now: datetime) -> list[dict]:
    """Texts and emails made in each of the last 24 local hours, oldest first, zeros too (the
    (status, created_at, type) index, every status)."""
    current_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    start = current_hour - timedelta(hours=23)
    counted = {}
    rows = (
        Notification.objects.filter(status__in=NotificationStatus.values, created_at__gte=start)
        .order_by()
        .annotate(hour=TruncHour("created_at", tzinfo=current_hour.tzinfo))
        .values_list("hour", "notification_type")
        .annotate(count=Count("*"))
    )
    for hour, kind, count in rows:
        counted[(timezone.localtime(hour).replace(tzinfo=None), kind)] = count
    hours = []
    for n in range(24):
        hour = timezone.localtime(start + timedelta(hours=n))
        key = hour.replace(tzinfo=None)
        hours.append(
            {
                "hour": hour,
                "sms": counted.get((key, "sms"), 0),
                "email": counted.get((key, "email"), 0),
            }
        )
    return hours
