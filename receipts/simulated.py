"""Receipts for a test key's notifications (contract section 11), made the moment one is handed
over (`sending/delivery.py`), as GOV.UK Notify's research mode makes them.

No provider is called: the receipt the chosen provider would have sent is built here, in that
provider's own format, and taken as any posted receipt is (`receipt_take`: stored raw, parsed by
the provider's parser, applied through the status module, so the status callback and everything
else follow as for a real one). Which receipt depends on the recipient: `07700900003` and
`temp-fail@simulator.notify` fail temporarily (Firetext: `pending`, then declined with code 102,
as Notify simulates it), `07700900002` and `perm-fail@simulator.notify` permanently, anyone
else is delivered.
"""

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings

from receipts.inbox import receipt_take
from receipts.parsers import RECEIPT_PARSER_CLASSES
from receipts.parsers.ses import SesReceiptParser
from sending.models import Notification, NotificationStatus

logger = logging.getLogger(__name__)

S = NotificationStatus

# By the recipient as a notification keeps it (a normalised number, an address as given).
SIMULATED_OUTCOMES = {
    "447700900003": S.TEMPORARY_FAILURE,
    "447700900002": S.PERMANENT_FAILURE,
    "temp-fail@simulator.notify": S.TEMPORARY_FAILURE,
    "perm-fail@simulator.notify": S.PERMANENT_FAILURE,
}

SNS = "text/plain"  # as SNS labels its JSON


def simulated_outcome(recipient: str) -> NotificationStatus:
    return SIMULATED_OUTCOMES.get(recipient.lower(), S.DELIVERED)


def _ses(notification: Notification, outcome: str) -> list[tuple[str, str]]:
    """An SNS `Notification` carrying SES's `Delivery`, or its `Bounce` (`Permanent`, or
    `Transient` for a temporary failure)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    mail = {
        "timestamp": now,
        "messageId": notification.provider_reference,
        "destination": [notification.recipient],
    }
    if outcome == S.DELIVERED:
        ses = {
            "notificationType": "Delivery",
            "mail": mail,
            "delivery": {
                "timestamp": now,
                "recipients": [notification.recipient],
                "smtpResponse": "250 2.6.0 Message received (simulated: test key)",
            },
        }
    else:
        bounce_type = "Permanent" if outcome == S.PERMANENT_FAILURE else "Transient"
        ses = {
            "notificationType": "Bounce",
            "mail": mail,
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "timestamp": now,
                "bouncedRecipients": [{"emailAddress": notification.recipient}],
            },
        }
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": f"arn:aws:sns:{settings.AWS_REGION}:000000000000:simulated-test-key",
        "Message": json.dumps(ses),
        "Timestamp": now,
    }
    return [(SNS, json.dumps(envelope))]


def _receipt_bodies(provider: str) -> Callable[[Notification, str], list[tuple[str, str]]]:
    """SES's is built here (its SNS envelope names our region); an SMS provider's by its own
    receipt parser, beside the reading of it."""
    if provider == SesReceiptParser.name:
        return _ses
    return RECEIPT_PARSER_CLASSES[provider].simulated_bodies


def receipt_simulate(*, notification: Notification, provider: str) -> None:
    """Registered in `settings.SIMULATED_SEND_HANDLERS`: take the receipt(s) `provider` would
    have sent for the notification (handed over to it, with `provider_reference` as the
    hand-over left it)."""
    outcome = simulated_outcome(notification.recipient)
    for content_type, body in _receipt_bodies(provider)(notification, outcome):
        problems = receipt_take(
            provider=provider, body=body.encode(), content_type=content_type, simulated=True
        )
        if problems:  # a body built here that its own parser refuses: a bug
            logger.error(
                "simulated receipt refused",
                extra={
                    "provider": provider,
                    "notification_id": str(notification.id),
                    "problems": problems,
                },
            )
    logger.info(
        "test key: receipt simulated",
        extra={"provider": provider, "notification_id": str(notification.id), "outcome": outcome},
    )
