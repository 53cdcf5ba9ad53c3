"""A service's guest list: the only recipients its team keys may send to (contract section 11).

We have no users per service, so, where GOV.UK Notify lets a team key send to the service's team
members and its guest list, the guest list here is the whole team. Phone numbers are kept and
compared normalised (`sending.phone_numbers`), so every way of writing one number matches;
email addresses in lower case, so they match without regard to case.
"""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from sending.models import GuestListRecipient, KeyType, NotificationType, Service
from sending.phone_numbers import InvalidPhoneNumber, normalise_phone_number

TEAM_KEY_REFUSED = "Can’t send to this recipient using a team-only API key"


class GuestListInvalid(ValueError):
    """The recipient is neither a phone number nor an email address; the text says why."""


def guest_list_recipient_normalise(raw: str) -> tuple[NotificationType, str]:
    """(the recipient's type, the value kept and compared) for a phone number or an address."""
    value = raw.strip()
    if "@" in value:
        try:
            validate_email(value)
        except ValidationError:
            raise GuestListInvalid("Not a valid email address") from None
        return NotificationType.EMAIL, value.lower()
    try:
        return NotificationType.SMS, normalise_phone_number(value).digits
    except InvalidPhoneNumber as err:
        raise GuestListInvalid(f"Not a phone number or an email address: {err}") from None


def guest_list_add(*, service: Service, recipient: str) -> tuple[GuestListRecipient, bool]:
    """Put a recipient on the service's guest list (once); answers the row and whether it is new."""
    recipient_type, value = guest_list_recipient_normalise(recipient)
    return GuestListRecipient.objects.get_or_create(
        service=service, recipient_type=recipient_type, recipient=value
    )


def recipients_refused_for_key(
    *, service: Service, key_type: str, notification_type: str, recipients: list[str]
) -> set[str]:
    """Those of `recipients` (as a notification stores them: a normalised number, an address as
    given) that a key of `key_type` may not send to: none but for a team key, whose recipients
    must be on the guest list. One query for any number of recipients."""
    if key_type != KeyType.TEAM:
        return set()
    compared = {recipient: _compared(notification_type, recipient) for recipient in recipients}
    allowed = set(
        GuestListRecipient.objects.filter(
            service=service,
            recipient_type=notification_type,
            recipient__in=set(compared.values()),
        ).values_list("recipient", flat=True)
    )
    return {recipient for recipient, value in compared.items() if value not in allowed}


def _compared(notification_type: str, recipient: str) -> str:
    return recipient.lower() if notification_type == NotificationType.EMAIL else recipient
