"""GOV.UK Notify's simulated recipients (contract section 11): a /v2 send to one of them, with
any key, is checked and answered in full, but nothing is stored, sent or counted. Services use
them to try their integration, and their smoke tests, without a real phone or inbox.

Matched as Notify matches them: a phone number once normalised (so `+44 7700 900000` and
`07700900000` are the same), an email address without regard to case.
"""

from sending.models import NotificationType
from sending.phone_numbers import normalise_phone_number

SIMULATED_PHONE_NUMBERS = frozenset(
    normalise_phone_number(number).digits
    for number in ("07700900000", "07700900111", "07700900222")
)
SIMULATED_EMAIL_ADDRESSES = frozenset(
    {
        "simulate-delivered@notifications.service.gov.uk",
        "simulate-delivered-2@notifications.service.gov.uk",
        "simulate-delivered-3@notifications.service.gov.uk",
    }
)


def recipient_simulated(*, notification_type: NotificationType, recipient: str) -> bool:
    """Whether `recipient` (a normalised phone number's digits, or an email address as given)
    is one of the simulated recipients."""
    if notification_type == NotificationType.SMS:
        return recipient in SIMULATED_PHONE_NUMBERS
    return recipient.lower() in SIMULATED_EMAIL_ADDRESSES
