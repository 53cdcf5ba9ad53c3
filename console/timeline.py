"""A notification's life in time order: created, each send attempt, each receipt, each
status callback to its service."""

from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from console.history import mends_of
from notifyproject.masking import text_mask
from receipts.selectors import receipt_list_for_notification, receipt_status_read
from sending.models import Notification, NotificationStatus
from webhooks.models import CallbackState


def console_time(moment: datetime) -> str:
    """A time as the console writes every time: local, with seconds and the offset."""
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    summary: str
    details: dict[str, str] = field(default_factory=dict)
    body: str = ""
    link: str = ""


def notification_timeline(*, notification: Notification) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(
            at=notification.created_at,
            kind="created",
            summary=f"{notification.get_notification_type_display()} accepted",
            details={"service": str(notification.service)},
        )
    ]
    for attempt in notification.attempts.order_by("started_at", "id"):
        details = {"provider": attempt.provider, **_answer_details(attempt, notification)}
        entries.append(
            TimelineEntry(
                at=attempt.started_at,
                kind="send attempt",
                summary=f"{attempt.provider}: {attempt.outcome}",
                details=details,
            )
        )
    for receipt in receipt_list_for_notification(notification=notification):
        entries.append(_receipt_entry(receipt, notification))
    for attempt in notification.callback_attempts.order_by("started_at", "id"):
        entries.append(_callback_attempt_entry(attempt, notification))
    entries.extend(_callbacks_not_yet_tried(notification))
    entries.extend(_operator_entries(notification))
    if planned := _planned_retry_entry(notification):
        entries.append(planned)
    entries.sort(key=lambda entry: entry.at)
    return entries


def _planned_retry_entry(notification: Notification) -> TimelineEntry | None:
    """A retry the pipeline will make by itself (shown at the time it is due)."""
    if notification.status != NotificationStatus.CREATED or notification.next_attempt_at is None:
        return None
    return TimelineEntry(
        at=notification.next_attempt_at,
        kind="retry planned",
        summary=f"retry {notification.retry_count} planned (due then, or use “Retry now”)",
        details={"retries so far": str(notification.retry_count)},
    )


def _callbacks_not_yet_tried(notification: Notification) -> list[TimelineEntry]:
    """Status callbacks written to the outbox that no attempt has been made for yet."""
    waiting = notification.callback_events.filter(attempts=0, state=CallbackState.PENDING)
    return [
        TimelineEntry(
            at=event.created_at,
            kind="callback queued",
            summary=f"{event.kind} callback queued, not yet tried",
            details={"due": console_time(event.next_attempt_at)},
            link=reverse("admin:webhooks_callbackevent_change", args=[event.pk]),
        )
        for event in waiting.order_by("created_at")
    ]


def _operator_entries(notification: Notification) -> list[TimelineEntry]:
    """What operators did to it from the console: who, what and why."""
    return [
        TimelineEntry(
            at=entry.action_time,
            kind="operator",
            summary=entry.get_change_message(),
            details={"who": entry.user.get_username() if entry.user else "—"},
        )
        for entry in mends_of(notification)
    ]


def _receipt_entry(receipt, notification: Notification) -> TimelineEntry:
    said = receipt_status_read(receipt=receipt)
    details = {"state": receipt.state, "outcome": receipt.outcome or "—"}
    if said is not None:
        details.update(status=said.status, code=said.code or "—", reason=said.reason or "—")
        if said.reported_at:
            details["reported at"] = console_time(said.reported_at)
    return TimelineEntry(
        at=receipt.received_at,
        kind="receipt",
        summary=f"{receipt.get_provider_display()} receipt"
        + (f": {said.status}" if said is not None else ""),
        details=details,
        body=text_mask(receipt.body, recipients=[notification.recipient]),
        link=reverse("admin:callbacks_receipt_change", args=[receipt.pk]),
    )


def _answer_details(attempt, notification: Notification) -> dict[str, str]:
    """A send attempt's or a callback attempt's duration, HTTP status and masked error (a
    provider may echo the notification's recipient in it)."""
    details = {"duration": f"{attempt.duration_ms} ms"}
    if attempt.status_code is not None:
        details["status code"] = str(attempt.status_code)
    if attempt.error:
        details["error"] = text_mask(attempt.error, recipients=[notification.recipient])
    return details


def _callback_attempt_entry(attempt, notification: Notification) -> TimelineEntry:
    details = {"outcome": attempt.get_outcome_display(), **_answer_details(attempt, notification)}
    answer = attempt.status_code or details.get("error", "")[:40] or "no answer"
    return TimelineEntry(
        at=attempt.started_at,
        kind="callback attempt",
        summary=f"status callback to the service: {answer}",
        details=details,
        link=reverse("admin:webhooks_callbackevent_change", args=[attempt.event_id]),
    )
