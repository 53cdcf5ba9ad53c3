"""A notification's life in time order: created, each send attempt, each receipt, each
status callback to its service."""

from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse

from callbacks.selectors import receipt_list_for_notification, receipt_status_read
from notifyproject.masking import text_mask
from sending.models import Notification


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
    entries.sort(key=lambda entry: entry.at)
    return entries


def _receipt_entry(receipt, notification: Notification) -> TimelineEntry:
    said = receipt_status_read(receipt=receipt)
    details = {"state": receipt.state, "outcome": receipt.outcome or "—"}
    if said is not None:
        details.update(status=said.status, code=said.code or "—", reason=said.reason or "—")
        if said.reported_at:
            details["reported at"] = said.reported_at.isoformat()
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
