"""SES receipts, which come through Amazon SNS: the SNS envelope (type, topic, signature, checked
by the verifier handed in: `sns.py` beside this) and SES's notification inside it."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from receipts.parsers.base import (
    DELIVERED,
    PERMANENT_FAILURE,
    TECHNICAL_FAILURE,
    TEMPORARY_FAILURE,
    ComplaintReceipt,
    ReceiptEvent,
    ReceiptParser,
    StatusReceipt,
    SubscriptionConfirmation,
    SubscriptionNotice,
    logger,
)
from receipts.parsers.sns import SnsSignatureInvalid, sns_url_is_aws


class SesReceiptParser(ReceiptParser):
    """An SNS HTTP(S) message; a `Notification`'s `Message` is SES's JSON notification."""

    name = "ses"
    display_name = "SES"
    # SNS posts JSON labelled text/plain.
    content_types = ("text/plain", "application/json")

    sns_types = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
    notification_types = {"Delivery": DELIVERED, "Bounce": None, "Complaint": None}
    # bounceType → our status; any other bounce type is temporary.
    bounce_types = {"Permanent": PERMANENT_FAILURE}
    bounce_default = TEMPORARY_FAILURE
    # (bounceType, bounceSubType) → reason, from the SES notification contents reference.
    bounce_reasons = {
        ("Undetermined", "Undetermined"): "SES could not determine the reason",
        ("Permanent", "General"): "hard bounce",
        ("Permanent", "NoEmail"): "the address does not exist",
        ("Permanent", "Suppressed"): "on the SES suppression list",
        ("Permanent", "OnAccountSuppressionList"): "on the account's suppression list",
        ("Transient", "General"): "soft bounce",
        ("Transient", "MailboxFull"): "mailbox full",
        ("Transient", "MessageTooLarge"): "message too large",
        ("Transient", "ContentRejected"): "content rejected",
        ("Transient", "AttachmentRejected"): "attachment rejected",
    }

    def __init__(
        self,
        *,
        topic_arns: tuple[str, ...] = (),
        verify: Callable[[dict], None] | None = None,
    ) -> None:
        """`topic_arns`: the SNS topics allowed (none: any); `verify`: raises
        `SnsSignatureInvalid` unless SNS signed the message (None: signatures not checked)."""
        self.topic_arns = tuple(topic_arns)
        self.verify = verify

    def parse_body(self, body: str) -> ReceiptEvent:
        message = self.json_object(body, "invalid json")
        kind = message.get("Type")
        if not kind:
            raise self.invalid("Type missing")
        if kind not in self.sns_types:
            raise self.invalid(f"Type {kind} not supported")
        topic = message.get("TopicArn")
        allowed = self.topic_arns
        if not isinstance(topic, str) or (allowed and topic not in allowed):
            raise self.invalid(f"topic {topic} not allowed")
        if self.verify is not None:
            try:
                self.verify(message)
            except SnsSignatureInvalid as err:
                logger.warning("sns signature invalid", extra={"reason": str(err), "topic": topic})
                raise self.invalid("invalid signature") from None

        if kind == "SubscriptionConfirmation":
            url = message.get("SubscribeURL")
            if not isinstance(url, str) or not sns_url_is_aws(url):
                raise self.invalid("SubscribeURL is not an SNS URL")
            return SubscriptionConfirmation(topic_arn=topic, subscribe_url=url)
        if kind == "UnsubscribeConfirmation":
            return SubscriptionNotice(kind=kind, topic_arn=topic)
        return self.ses_notification(message.get("Message"), message.get("MessageId", ""))

    def ses_notification(self, text, sns_message_id: str) -> ReceiptEvent:
        if not isinstance(text, str):
            raise self.invalid("Message missing")
        ses = self.json_object(text, "invalid json in Message")
        kind = ses.get("notificationType")
        mail = ses.get("mail") if isinstance(ses.get("mail"), dict) else {}
        message_id = mail.get("messageId")
        problems = [] if kind else ["notificationType missing"]
        if kind and not isinstance(kind, str):
            problems = ["notificationType must be a string"]
        if not message_id or not isinstance(message_id, str):
            problems.append("mail.messageId missing")
        if problems:
            raise self.invalid(*problems)

        if kind == "Complaint":
            complaint = self.detail(ses, "complaint", message_id)
            return self.complaint(complaint, message_id, sns_message_id)
        if kind == "Delivery":
            delivery = self.detail(ses, "delivery", message_id)
            return StatusReceipt(
                status=DELIVERED,
                provider_status=kind,
                provider_reference=message_id,
                code=kind,
                reason=str(delivery.get("smtpResponse", "")),
                reported_at=self.iso_time(delivery.get("timestamp"), message_id),
            )
        if kind == "Bounce":
            return self.bounce(self.detail(ses, "bounce", message_id), message_id)
        self.log_unknown("notificationType", str(kind), message_id, level=logging.ERROR)
        return StatusReceipt(
            status=TECHNICAL_FAILURE,
            provider_status=str(kind),
            provider_reference=message_id,
            code=str(kind),
            problems=(self.message(f"notificationType {kind} not found"),),
        )

    def bounce(self, bounce: dict, message_id: str) -> StatusReceipt:
        bounce_type = str(bounce.get("bounceType", ""))
        sub_type = str(bounce.get("bounceSubType", ""))
        described = self.bounce_reasons.get((bounce_type, sub_type), "")
        return StatusReceipt(
            status=self.bounce_types.get(bounce_type, self.bounce_default),
            provider_status="Bounce",
            provider_reference=message_id,
            code="Bounce",
            reason=f"{bounce_type}/{sub_type}" + (f": {described}" if described else ""),
            reported_at=self.iso_time(bounce.get("timestamp"), message_id),
        )

    def complaint(self, complaint: dict, message_id: str, sns_message_id: str) -> ComplaintReceipt:
        return ComplaintReceipt(
            provider_reference=message_id,
            feedback_id=str(complaint.get("feedbackId") or sns_message_id or message_id),
            complaint_type=str(complaint.get("complaintFeedbackType", "")),
            complained_at=self.iso_time(complaint.get("timestamp"), message_id),
        )

    def detail(self, ses: dict, field: str, reference: str) -> dict:
        """The object that details a delivery, bounce or complaint: optional, so one of the
        wrong type is logged and left out, and the receipt applies on its type alone."""
        value = ses.get(field)
        if value is None or isinstance(value, dict):
            return value or {}
        self.log_bad_field(field, repr(value), reference, "is not an object")
        return {}

    def iso_time(self, value, reference: str) -> datetime | None:
        """An optional ISO 8601 time; one that does not parse is logged and left out."""
        if value is None:
            return None
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
                return self.checked_time("timestamp", moment, reference)
        self.log_bad_field("timestamp", str(value), reference, "is not an ISO 8601 time")
        return None
