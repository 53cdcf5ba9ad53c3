"""The service's settings with a third SMS provider, `acme`, as its entry and settings would be
written in notifyproject/settings.py."""

from notifyproject import settings as service
from notifyproject.settings import *  # noqa: F403

SMS_PROVIDERS = {
    **getattr(service, "SMS_PROVIDERS", {}),
    "acme": {
        "display_name": "Acme",
        "international": False,
        "client": "tests.receipts.acme.client.AcmeClient",
        "receipt_parser": "tests.receipts.acme.parsers.AcmeReceiptParser",
        "inbound_parser": "tests.receipts.acme.parsers.AcmeInboundParser",
    },
}
SMS_RESTING_PRIORITIES = {**service.SMS_RESTING_PRIORITIES, "acme": 0}
ACME_RECEIPT_AUTH = [("acme", "acme-receipts-secret")]
