"""A /v2 send: the template found and filled in, the sender chosen, then the ordinary
notification made through `notification_create`, the one write path (or, for a simulated
recipient, only answered)."""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings

from sending.api.serializers import EMAIL_CONTENT_LIMIT, EMAIL_SUBJECT_LIMIT
from sending.api_v2.errors import BadRequest
from sending.fragments import MAX_SMS_FRAGMENTS, sms_fragment_count, sms_too_long_message
from sending.models import KeyType, Notification, NotificationType, Service, Template
from sending.placeholders import MissingPersonalisation, PersonalisationRefused
from sending.senders import SENDERS, default_sender
from sending.services import notification_create
from sending.simulated_recipients import recipient_simulated
from sending.templates import Rendered, template_find, template_render

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    notification: Notification
    rendered: Rendered
    sender: str  # the SMS `from`, or the email's Reply-To ("" for none)


def template_for_service(*, service: Service, template_id: uuid.UUID) -> Template:
    template = template_find(service=service, template_id=template_id)
    if template is None:
        raise BadRequest("Template not found")
    return template


def rendered_or_400(template, personalisation: dict, sanitise_for=()) -> Rendered:
    try:
        return template_render(template, personalisation, sanitise_for=sanitise_for or ())
    except MissingPersonalisation as err:
        raise BadRequest(f"Missing personalisation: {', '.join(err.names)}") from None
    except PersonalisationRefused as err:
        raise BadRequest(err.messages) from None


def notification_send_from_template(
    *,
    service: Service,
    notification_type: NotificationType,
    recipient: str,
    international: bool = False,
    template_id: uuid.UUID,
    personalisation: dict,
    reference: str | None,
    sender_id: uuid.UUID | None,
    sanitise_for: list[str] = (),
    unsubscribe_url: str | None = None,
    key_type: KeyType = KeyType.NORMAL,
) -> Sent:
    model, column, field = SENDERS[notification_type]
    template = template_for_service(service=service, template_id=template_id)
    if template.template_type != notification_type:
        raise BadRequest(
            f"{template.template_type} template is not suitable for {notification_type} "
            "notification"
        )
    rendered = rendered_or_400(template, personalisation, sanitise_for)
    _check_length(notification_type, rendered)
    if sender_id is None:
        sender = default_sender(service=service, notification_type=notification_type)
    else:
        sender = model.objects.filter(id=sender_id, service=service).values_list(column, flat=True)
        sender = sender.first()
        if sender is None:
            raise BadRequest(
                f"{field} {sender_id} does not exist in database for service id {service.id}"
            )
    fields = {
        "notification_type": notification_type,
        "recipient": recipient,
        "international": international,
        "subject": rendered.subject or "",
        "content": rendered.body,
        "client_reference": reference,
        "template": template,
        "template_version": template.version,
        "sender": sender,
        "unsubscribe_url": unsubscribe_url,
        "key_type": key_type,
    }
    if recipient_simulated(notification_type=notification_type, recipient=recipient):
        # Answered like any send, with an id of its own, but never saved, queued or counted.
        notification = Notification(service=service, **fields)
        logger.info(
            "simulated notification answered, not stored",
            extra={"notification_id": str(notification.id), "service_id": str(service.id)},
        )
    else:
        notification = notification_create(service=service, **fields)
    return Sent(notification=notification, rendered=rendered, sender=sender)


def _check_length(notification_type: NotificationType, rendered: Rendered) -> None:
    if not rendered.body.strip():
        raise BadRequest("Message is empty or just whitespace")
    if notification_type == NotificationType.SMS:
        fragments = sms_fragment_count(rendered.body)
        if fragments > MAX_SMS_FRAGMENTS:
            raise BadRequest(sms_too_long_message(fragments))
        return
    if not rendered.subject:
        raise BadRequest("Subject is empty")
    if len(rendered.subject) > EMAIL_SUBJECT_LIMIT:
        raise BadRequest(f"Subject is longer than {EMAIL_SUBJECT_LIMIT} characters")
    if len(rendered.body) > EMAIL_CONTENT_LIMIT:
        raise BadRequest(f"Email body is longer than {EMAIL_CONTENT_LIMIT} characters")


def from_shown(notification_type: NotificationType, sender: str) -> str:
    """What the answer shows as the text's `from_number` or the email's `from_email`."""
    if notification_type == NotificationType.SMS:
        return sender or settings.SMS_SENDER
    return settings.SES_FROM_ADDRESS
