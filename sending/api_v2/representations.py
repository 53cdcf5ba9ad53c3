"""The /v2 API's answers, shaped as GOV.UK Notify's and its official clients' response schemas
expect (every field present; the letter fields null; `uri`s absolute)."""

from datetime import UTC, datetime

from sending.models import (
    FINAL_STATUSES,
    Notification,
    NotificationType,
    Template,
    TemplateVersion,
)
from sending.templates import Rendered

LETTER_FIELDS = ("line_1", "line_2", "line_3", "line_4", "line_5", "line_6", "postcode", "postage")


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def template_link(request, template_id, version) -> dict | None:
    if template_id is None:
        return None  # made through the API of section 4, from no template
    return {
        "id": str(template_id),
        "version": version,
        "uri": request.build_absolute_uri(f"/v2/template/{template_id}/version/{version}"),
    }


def notification_created(
    request, notification: Notification, rendered: Rendered, *, from_: str
) -> dict:
    """The answer to POST /v2/notifications/sms or /email."""
    is_email = notification.notification_type == NotificationType.EMAIL
    content = {"body": rendered.body}
    if is_email:
        content.update(
            subject=rendered.subject,
            from_email=from_,
            one_click_unsubscribe_url=notification.unsubscribe_url,
        )
    else:
        content["from_number"] = from_
    answer = {
        "id": str(notification.id),
        "reference": notification.client_reference,
        "content": content,
        "uri": request.build_absolute_uri(f"/v2/notifications/{notification.id}"),
        "template": template_link(request, notification.template_id, notification.template_version),
        "scheduled_for": None,
    }
    if is_email:
        answer["sanitised_content"] = rendered.sanitised
    return answer


def notification_v2(request, notification: Notification) -> dict:
    """A notification as GET /v2/notifications/{id} shows it."""
    is_email = notification.notification_type == NotificationType.EMAIL
    final = notification.status in FINAL_STATUSES
    return {
        "id": str(notification.id),
        "reference": notification.client_reference,
        "email_address": notification.recipient if is_email else None,
        "phone_number": None if is_email else notification.recipient,
        **dict.fromkeys(LETTER_FIELDS),
        "type": notification.notification_type,
        "status": notification.status,
        "template": template_link(request, notification.template_id, notification.template_version),
        "body": notification.content,
        "subject": notification.subject if is_email else None,
        "created_at": timestamp(notification.created_at),
        "created_by_name": None,
        "sent_at": timestamp(notification.sent_at),
        "completed_at": timestamp(notification.updated_at) if final else None,
        "scheduled_for": None,
    }


def template_v2(template: Template, version: TemplateVersion | None = None) -> dict:
    """A template (its current version, or `version`) as GET /v2/template/{id} shows it."""
    shown = version or template
    number = shown.version
    # The time of the version shown; none for a template never changed (as GOV.UK Notify).
    updated_at = None if number == 1 else (version.created_at if version else template.updated_at)
    is_email = shown.template_type == NotificationType.EMAIL
    return {
        "id": str(template.id),
        "name": shown.name,
        "type": shown.template_type,
        "created_at": timestamp(template.created_at),
        "updated_at": timestamp(updated_at),
        "created_by": (version.created_by if version else template.created_by) or "",
        "version": number,
        "body": shown.body,
        "subject": shown.subject if is_email else None,
        "letter_contact_block": None,
        "postage": None,
    }
