"""Receipt parsers, one module per provider over a small base (`base.py`): each SMS provider's
(its received-text parser beside its receipt parser), named in `settings.SMS_PROVIDERS`, and SES
with its SNS verification beside it (`sns.py`). `receipt_parser(name)` builds one with what it
needs from the settings; the parsers themselves read none."""

from django.conf import settings
from django.utils.module_loading import import_string

from receipts.parsers.base import (
    ComplaintReceipt,
    ReceiptEvent,
    ReceiptInvalid,
    ReceiptParser,
    ReceivedTextEvent,
    StatusReceipt,
    SubscriptionConfirmation,
    SubscriptionNotice,
)
from receipts.parsers.ses import SesReceiptParser
from receipts.parsers.sns import sns_message_verify
from sending.providers import SMS_PROVIDERS

# By the name each reads for: a provider's receipts (`firetext`), its received texts
# (`firetext-inbound`). In the order of `ReceiptProvider`.
RECEIPT_PARSER_CLASSES: dict[str, type[ReceiptParser]] = {
    parser.name: parser
    for parser in (
        *(import_string(p.receipt_parser) for p in SMS_PROVIDERS),
        SesReceiptParser,
        *(import_string(p.inbound_parser) for p in SMS_PROVIDERS if p.inbound_parser),
    )
}


def receipt_parser(name: str, *, simulated: bool = False, quiet: bool = False) -> ReceiptParser:
    """The parser for provider `name`, given the settings it depends on as they are now. A
    `simulated` receipt (a test key's, made by this service in-process: `receipts.simulated`)
    is not SNS's, so its SNS topic and signature are not checked. `quiet`: logging nothing of
    what it finds, for the web's reading before the drain's."""
    if name == SesReceiptParser.name and simulated:
        parser = SesReceiptParser()
    elif name == SesReceiptParser.name:
        parser = SesReceiptParser(
            topic_arns=tuple(settings.SES_SNS_TOPIC_ARNS),
            verify=sns_message_verify if settings.SNS_VERIFY_SIGNATURES else None,
        )
    else:
        parser = RECEIPT_PARSER_CLASSES[name]()
    parser.quiet = quiet
    return parser


__all__ = [
    "RECEIPT_PARSER_CLASSES",
    "ComplaintReceipt",
    "ReceiptEvent",
    "ReceiptInvalid",
    "ReceiptParser",
    "ReceivedTextEvent",
    "StatusReceipt",
    "SubscriptionConfirmation",
    "SubscriptionNotice",
    "receipt_parser",
]
