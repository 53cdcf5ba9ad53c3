"""Receipt formats and status maps, one parser per provider (contract section 6).

A parser turns a stored body into one event, or raises ReceiptInvalid with the messages the
provider is answered with (400). It touches no database, so a stored receipt can be parsed
again at any time (`manage.py replay_receipts`) with the same result.
"""

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from django.conf import settings

from callbacks.models import ReceiptProvider
from callbacks.sns import SnsSignatureInvalid, sns_message_verify, sns_url_is_aws
from sending.models import NotificationStatus

logger = logging.getLogger(__name__)

DELIVERED = NotificationStatus.DELIVERED
PENDING = NotificationStatus.PENDING
PERMANENT_FAILURE = NotificationStatus.PERMANENT_FAILURE
TEMPORARY_FAILURE = NotificationStatus.TEMPORARY_FAILURE
TECHNICAL_FAILURE = NotificationStatus.TECHNICAL_FAILURE

# Firetext and MMG report UK local time.
UK = ZoneInfo("Europe/London")
MAX_FORM_FIELDS = 50


class ReceiptInvalid(Exception):
    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class StatusReceipt:
    """The provider says what became of a notification."""

    status: NotificationStatus
    provider_status: str
    notification_id: uuid.UUID | None = None
    provider_reference: str = ""  # SES names the message by its MessageId instead
    status_if_pending: NotificationStatus | None = None
    code: str = ""
    reason: str = ""
    reported_at: datetime | None = None
    # A status not in the map: the notification becomes technical-failure, and the
    # provider is answered 400 with these messages.
    problems: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        return str(self.notification_id) if self.notification_id else self.provider_reference


@dataclass(frozen=True)
class ComplaintReceipt:
    provider_reference: str
    feedback_id: str
    complaint_type: str
    complained_at: datetime | None

    @property
    def reference(self) -> str:
        return self.provider_reference


@dataclass(frozen=True)
class SubscriptionConfirmation:
    topic_arn: str
    subscribe_url: str

    @property
    def reference(self) -> str:
        return self.topic_arn


@dataclass(frozen=True)
class SubscriptionNotice:
    """An SNS message that needs no action (UnsubscribeConfirmation)."""

    kind: str
    topic_arn: str

    @property
    def reference(self) -> str:
        return self.topic_arn


ReceiptEvent = StatusReceipt | ComplaintReceipt | SubscriptionConfirmation | SubscriptionNotice


class ReceiptParser:
    name: str
    display_name: str
    content_types: tuple[str, ...]

    def parse(self, *, body: str, content_type: str) -> ReceiptEvent:
        media_type = content_type.partition(";")[0].strip().lower()
        if media_type not in self.content_types:
            raise self.invalid(
                f"content type {media_type or 'missing'} not supported "
                f"(expected {' or '.join(self.content_types)})"
            )
        return self.parse_body(body)

    def parse_body(self, body: str) -> ReceiptEvent:
        raise NotImplementedError

    def invalid(self, *problems: str) -> ReceiptInvalid:
        return ReceiptInvalid([self.message(problem) for problem in problems])

    def message(self, problem: str) -> str:
        return f"{self.display_name} callback failed: {problem}"

    @staticmethod
    def missing(**fields: str) -> list[str]:
        return [f"{name} missing" for name, value in fields.items() if not value]

    def notification_id(self, field: str, value: str, problems: list[str]) -> uuid.UUID | None:
        try:
            return uuid.UUID(value)
        except ValueError:
            problems.append(f"{field} is not a UUID")
            return None

    def local_time(self, field: str, value: str, problems: list[str]) -> datetime | None:
        """`2016-03-10 14:17:00` in UK local time, or with an offset (`+0200`)."""
        for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%z"):
            try:
                moment = datetime.strptime(value.strip(), layout)
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UK)
        problems.append(f"{field} is not a time (expected YYYY-MM-DD HH:MM:SS)")
        return None

    def log_unknown(self, what: str, value: str, reference: str, *, level: int) -> None:
        logger.log(
            level,
            f"{self.name} receipt with unknown {what}",
            extra={"provider": self.name, what: value, "reference": reference},
        )


class FiretextReceiptParser(ReceiptParser):
    """Form-encoded: mobile, status, time, reference (our notification id), code (optional)."""

    name = ReceiptProvider.FIRETEXT.value
    display_name = "Firetext"
    content_types = ("application/x-www-form-urlencoded",)

    # status → (meaning, our status); status 1 is decided by the code table below.
    statuses = {
        "0": ("delivered", DELIVERED),
        "1": ("declined", None),
        "2": ("pending", PENDING),
    }
    # code → (reason, our status for a declined receipt)
    codes = {
        "000": ("No error reported", TEMPORARY_FAILURE),
        "101": ("Unknown Subscriber", PERMANENT_FAILURE),
        "102": ("Absent Subscriber", TEMPORARY_FAILURE),
        "103": ("Subscriber Busy", TEMPORARY_FAILURE),
        "104": ("No Subscriber Memory", TEMPORARY_FAILURE),
        "201": ("Invalid Number", PERMANENT_FAILURE),
        "301": ("SMS Not Supported", PERMANENT_FAILURE),
        "302": ("SMS Not Supported", TEMPORARY_FAILURE),
        "401": ("Message Rejected", PERMANENT_FAILURE),
        "900": ("Routing Error", TEMPORARY_FAILURE),
    }
    # A declined receipt without a known code.
    declined_default = PERMANENT_FAILURE
    declined_default_if_pending = TEMPORARY_FAILURE

    def parse_body(self, body: str) -> StatusReceipt:
        fields = self.form_fields(body)
        status, reference = fields.get("status", "").strip(), fields.get("reference", "").strip()
        problems = self.missing(status=status, reference=reference)
        if problems:
            raise self.invalid(*problems)
        notification_id = self.notification_id("reference", reference, problems)
        time = fields.get("time", "").strip()
        reported_at = self.local_time("time", time, problems) if time else None
        if problems:
            raise self.invalid(*problems)

        code = fields.get("code", "").strip()
        reason, code_status = self.codes.get(code, ("", None))
        if code and code_status is None:
            reason = "Unknown code"
            self.log_unknown("code", code, reference, level=logging.WARNING)
        receipt = dict(
            provider_status=status,
            notification_id=notification_id,
            code=code,
            reason=reason,
            reported_at=reported_at,
        )
        if status not in self.statuses:
            self.log_unknown("status", status, reference, level=logging.ERROR)
            return StatusReceipt(
                status=TECHNICAL_FAILURE,
                problems=(self.message(f"status {status} not found"),),
                **receipt,
            )
        mapped = self.statuses[status][1]
        if mapped is not None:
            return StatusReceipt(status=mapped, **receipt)
        if code_status is not None:
            return StatusReceipt(status=code_status, **receipt)
        return StatusReceipt(
            status=self.declined_default,
            status_if_pending=self.declined_default_if_pending,
            **receipt,
        )

    def form_fields(self, body: str) -> dict[str, str]:
        """The first value of each field; a body that is not `key=value&…` is refused."""
        pairs = [pair for pair in body.split("&") if pair]
        if len(pairs) > MAX_FORM_FIELDS or any("=" not in pair for pair in pairs):
            raise self.invalid("body is not form-encoded")
        try:
            parsed = parse_qsl(body, keep_blank_values=True, errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise self.invalid("body is not form-encoded") from None
        fields: dict[str, str] = {}
        for key, value in parsed:
            fields.setdefault(key, value)
        return fields


class MmgReceiptParser(ReceiptParser):
    """JSON: reference (MMG's id), CID (our notification id), MSISDN, status, substatus,
    deliverytime."""

    name = ReceiptProvider.MMG.value
    display_name = "MMG"
    content_types = ("application/json", "text/plain")

    statuses = {
        "2": PERMANENT_FAILURE,
        "3": DELIVERED,
        "4": TEMPORARY_FAILURE,
        "5": PERMANENT_FAILURE,
    }
    # status → substatus → reason
    substatuses = {
        "2": {
            "1": "Number does not exist",
            "4": "Rejected by operator",
            "5": "Unidentified Subscriber",
            "9": "Undelivered",
            "11": "Service suspended",
            "12": "Illegal equipment",
            "2049": "Blacklisted",
            "2050": "Blacklisted",
            "2052": "Blacklisted",
            "2053": "Blacklisted",
        },
        "3": {
            "2": "Delivered to operator",
            "5": "Delivered to handset",
        },
        "4": {
            "6": "Absent Subscriber",
            "27": "Absent Subscriber",
            "8": "Roaming not allowed",
            "13": "SMS Not Supported",
            "15": "Expired",
            "29": "Invalid delivery report",
            "32": "Delivery Failure",
        },
        "5": {
            "6": "Network out of coverage",
            "8": "Incorrect prefix",
            "10": "DND",
            "11": "Sender id not registered",
            "13": "Sender id blacklisted",
            "14": "Dest blacklisted",
            "19": "Routing unavailable",
            "20": "Anti-flooding",
            "21": "System error",
            "23": "Duplicate msg id",
            "24": "Formatted incorrectly",
            "25": "Too long",
            "51": "Missing recipient",
            "52": "Invalid destination",
        },
    }

    def parse_body(self, body: str) -> StatusReceipt:
        try:
            data = json.loads(body)
        except ValueError:
            raise self.invalid("invalid json") from None
        if not isinstance(data, dict):
            raise self.invalid("invalid json (expected an object)")
        problems: list[str] = []
        status = self.text(data, "status", problems)
        cid = self.text(data, "CID", problems)
        problems += self.missing(status=status, CID=cid)
        if problems:
            raise self.invalid(*problems)
        notification_id = self.notification_id("CID", cid, problems)
        substatus = self.text(data, "substatus", problems)
        deliverytime = self.text(data, "deliverytime", problems)
        reported_at = (
            self.local_time("deliverytime", deliverytime, problems) if deliverytime else None
        )
        if problems:
            raise self.invalid(*problems)

        reason = self.substatuses.get(status, {}).get(substatus, "")
        if substatus and not reason and status in self.statuses:
            self.log_unknown("substatus", f"{status}/{substatus}", cid, level=logging.WARNING)
        receipt = dict(
            provider_status=status,
            notification_id=notification_id,
            code=f"{status}/{substatus}" if substatus else status,
            reason=reason,
            reported_at=reported_at,
        )
        if status not in self.statuses:
            self.log_unknown("status", status, cid, level=logging.ERROR)
            return StatusReceipt(
                status=TECHNICAL_FAILURE,
                problems=(self.message(f"status {status} not found"),),
                **receipt,
            )
        return StatusReceipt(status=self.statuses[status], **receipt)

    @staticmethod
    def text(data: dict, field: str, problems: list[str]) -> str:
        """A field as text: MMG sends numbers as JSON numbers or strings."""
        value = data.get(field)
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        problems.append(f"{field} must be a string or a whole number")
        return "?"


class SesReceiptParser(ReceiptParser):
    """An SNS HTTP(S) message; a `Notification`'s `Message` is SES's JSON notification."""

    name = ReceiptProvider.SES.value
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

    def parse_body(self, body: str) -> ReceiptEvent:
        message = self.json_object(body, "invalid json")
        kind = message.get("Type")
        if not kind:
            raise self.invalid("Type missing")
        if kind not in self.sns_types:
            raise self.invalid(f"Type {kind} not supported")
        topic = message.get("TopicArn")
        allowed = settings.SES_SNS_TOPIC_ARNS
        if not isinstance(topic, str) or (allowed and topic not in allowed):
            raise self.invalid(f"topic {topic} not allowed")
        if settings.SNS_VERIFY_SIGNATURES:
            try:
                sns_message_verify(message)
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
        if not message_id or not isinstance(message_id, str):
            problems.append("mail.messageId missing")
        if problems:
            raise self.invalid(*problems)

        if kind == "Complaint":
            return self.complaint(ses.get("complaint") or {}, message_id, sns_message_id)
        if kind == "Delivery":
            delivery = ses.get("delivery") or {}
            return StatusReceipt(
                status=DELIVERED,
                provider_status=kind,
                provider_reference=message_id,
                code=kind,
                reason=str(delivery.get("smtpResponse", "")),
                reported_at=self.iso_time(delivery.get("timestamp")),
            )
        if kind == "Bounce":
            return self.bounce(ses.get("bounce") or {}, message_id)
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
            reported_at=self.iso_time(bounce.get("timestamp")),
        )

    def complaint(self, complaint: dict, message_id: str, sns_message_id: str) -> ComplaintReceipt:
        return ComplaintReceipt(
            provider_reference=message_id,
            feedback_id=str(complaint.get("feedbackId") or sns_message_id or message_id),
            complaint_type=str(complaint.get("complaintFeedbackType", "")),
            complained_at=self.iso_time(complaint.get("timestamp")),
        )

    def json_object(self, text: str, problem: str) -> dict:
        try:
            value = json.loads(text)
        except ValueError:
            raise self.invalid(problem) from None
        if not isinstance(value, dict):
            raise self.invalid(problem)
        return value

    @staticmethod
    def iso_time(value) -> datetime | None:
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None


RECEIPT_PARSERS: dict[str, ReceiptParser] = {
    parser.name: parser
    for parser in (FiretextReceiptParser(), MmgReceiptParser(), SesReceiptParser())
}
