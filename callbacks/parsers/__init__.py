"""Receipt parsers, one module per provider over a small base (`base.py`): Firetext and MMG (each
with its received-text parser beside its receipt parser), and SES with its SNS verification
beside it (`sns.py`). `receipt_parser(name)` builds one with what it
needs from the settings; the parsers themselves read none."""

from django.conf import settings

from callbacks.parsers.base import (
    ComplaintReceipt,
    ReceiptEvent,
    ReceiptInvalid,
    ReceiptParser,
    ReceivedTextEvent,
    StatusReceipt,
    SubscriptionConfirmation,
    SubscriptionNotice,
)
from callbacks.parsers.firetext import FiretextInboundParser, FiretextReceiptParser
from callbacks.parsers.mmg import MmgInboundParser, MmgReceiptParser
from callbacks.parsers.ses import SesReceiptParser
from callbacks.parsers.sns import sns_message_verify

RECEIPT_PARSER_CLASSES: dict[str, type[ReceiptParser]] = {
    parser.name: parser
    for parser in (
        FiretextReceiptParser,
        MmgReceiptParser,
        SesReceiptParser,
        FiretextInboundParser,
        MmgInboundParser,
    )
}


def receipt_parser(name: str) -> ReceiptParser:
    """The parser for provider `name`, given the settings it depends on as they are now."""
    if name == SesReceiptParser.name:
        return SesReceiptParser(
            topic_arns=tuple(settings.SES_SNS_TOPIC_ARNS),
            verify=sns_message_verify if settings.SNS_VERIFY_SIGNATURES else None,
        )
    return RECEIPT_PARSER_CLASSES[name]()


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
