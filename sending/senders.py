"""A service's SMS senders and email reply-to addresses: added here, one default of each."""

import re

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from sending.models import EmailReplyTo, NotificationType, Service, SmsSender

# Each type's own sender table, its column, and the /v2 request field that names one.
SENDERS = {
    NotificationType.SMS: (SmsSender, "sms_sender", "sms_sender_id"),
    NotificationType.EMAIL: (EmailReplyTo, "email_address", "email_reply_to_id"),
}
# Short, as the template cache's: a process killed between a change's commit and its cache
# write leaves the old default for this long at most.
DEFAULT_ENTRY_SECONDS = 60

# Alphanumeric senders are at most 11 characters (GSM 03.40); numeric ones are phone numbers.
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 &'.,!?-]{1,11}")
_NUMERIC_SENDER = re.compile(r"\+?\d{3,15}")


def sms_sender_add(*, service: Service, sms_sender: str, is_default: bool = False) -> SmsSender:
    """A new sender; the service's first, or one added with `is_default`, becomes the default."""
    sms_sender = sms_sender.strip()
    if not (_ALPHANUMERIC_SENDER.fullmatch(sms_sender) or _NUMERIC_SENDER.fullmatch(sms_sender)):
        raise ValidationError(
            "an SMS sender is 1 to 11 letters, digits and spaces, or a number of up to 15 digits"
        )
    return _sender_add(NotificationType.SMS, service, sms_sender, is_default)


def email_reply_to_add(
    *, service: Service, email_address: str, is_default: bool = False
) -> EmailReplyTo:
    """A new reply-to address; the service's first, or one added with `is_default`, becomes the
    default."""
    email_address = email_address.strip()
    validate_email(email_address)
    return _sender_add(NotificationType.EMAIL, service, email_address, is_default)


def _sender_add(notification_type: str, service: Service, value: str, is_default: bool):
    model, column, _ = SENDERS[notification_type]
    with transaction.atomic():
        Service.objects.select_for_update().filter(id=service.id).first()  # one change at a time
        existing = model.objects.filter(service=service)
        is_default = is_default or not existing.exists()
        if is_default:
            existing.filter(is_default=True).update(is_default=False)
        return model.objects.create(service=service, is_default=is_default, **{column: value})


def _default_entry(notification_type: str, service_id) -> str:
    return f"default-sender:{notification_type}:{service_id}"


def _default_read(notification_type: str, service_id) -> str:
    model, column, _ = SENDERS[notification_type]
    found = model.objects.filter(service_id=service_id, is_default=True).values_list(column)
    return (found.first() or ("",))[0]


def default_sender(*, service: Service, notification_type: str) -> str:
    """The service's default SMS sender or reply-to address ("" for none), read through the
    shared cache: every change to a service's senders rewrites its entry once committed."""
    entry = _default_entry(notification_type, service.id)
    value = cache.get(entry)
    if value is None:
        value = _default_read(notification_type, service.id)
        cache.add(entry, value, timeout=DEFAULT_ENTRY_SECONDS)
    return value


@receiver([post_save, post_delete], sender=SmsSender)
@receiver([post_save, post_delete], sender=EmailReplyTo)
def _senders_changed(sender, instance, **kwargs) -> None:
    notification_type = NotificationType.SMS if sender is SmsSender else NotificationType.EMAIL
    service_id = instance.service_id

    def rewrite() -> None:  # read after the commit: the default as it now is
        entry = _default_entry(notification_type, service_id)
        cache.set(entry, _default_read(notification_type, service_id), DEFAULT_ENTRY_SECONDS)

    transaction.on_commit(rewrite)
