"""A service's SMS senders and email reply-to addresses: added here, one default of each."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from sending.models import EmailReplyTo, Service, SmsSender

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
    with transaction.atomic():
        Service.objects.select_for_update().filter(id=service.id).first()  # one change at a time
        existing = SmsSender.objects.filter(service=service)
        is_default = is_default or not existing.exists()
        if is_default:
            existing.filter(is_default=True).update(is_default=False)
        return SmsSender.objects.create(
            service=service, sms_sender=sms_sender, is_default=is_default
        )


def email_reply_to_add(
    *, service: Service, email_address: str, is_default: bool = False
) -> EmailReplyTo:
    """A new reply-to address; the service's first, or one added with `is_default`, becomes the
    default."""
    email_address = email_address.strip()
    validate_email(email_address)
    with transaction.atomic():
        Service.objects.select_for_update().filter(id=service.id).first()
        existing = EmailReplyTo.objects.filter(service=service)
        is_default = is_default or not existing.exists()
        if is_default:
            existing.filter(is_default=True).update(is_default=False)
        return EmailReplyTo.objects.create(
            service=service, email_address=email_address, is_default=is_default
        )
