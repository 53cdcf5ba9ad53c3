"""What each fake provider reads, answers and later posts back, in the real providers' formats.

Firetext: form post, JSON answer with `code`, receipts and received texts as form posts.
MMG: JSON post with Basic auth, `{"Reference": n}` answer, receipts and received texts as JSON.
SES v2 `SendEmail` (REST-JSON, as boto3 `sesv2` calls it), receipts as SNS-wrapped notifications.
Status codes and reasons are those of ../shared/CONTRACT.md section 6; error codes other than
Firetext's `1 Invalid apiKey` and MMG's `400 {"Error": 206}` are this fake's own choice.
"""

import itertools
import json
import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from urllib.parse import parse_qsl, quote_plus, urlencode
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: object, headers: dict[str, str] | None = None) -> "Answer":
        return cls(status, json.dumps(data).encode(), "application/json", headers or {})

    @classmethod
    def html(cls, status: int, title: str) -> "Answer":
        page = f"<html><head><title>{status} {title}</title></head><h1>{title}</h1></html>"
        return cls(status, page.encode(), "text/html; charset=utf-8")


@dataclass
class Send:
    """A send request the fake understood."""

    to: str
    reference: str | None  # our notification id: Firetext `reference`, MMG `cid`
    receipt_url: str | None = None  # Firetext `receipt`, MMG `delurl`
    source: str | None = None
    subject: str | None = None
    message: str = ""


@dataclass
class Receipt:
    """One receipt to post: `url` is a path under --receipts-to unless absolute."""

    provider: str
    url: str
    body: bytes
    content_type: str
    reference: str | None
    status: str
    headers: dict[str, str] = field(default_factory=dict)


def uk_local(moment: datetime) -> str:
    return moment.astimezone(UK).strftime("%Y-%m-%d %H:%M:%S")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def hosted_number(number: str) -> str:
    """How the fake compares numbers it hosts: digits, a UK national `0` as `44`."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return "44" + digits[1:] if digits.startswith("0") else digits


@dataclass(frozen=True)
class ReceivedText:
    """A text someone sent to one of the numbers a fake provider hosts."""

    source: str
    destination: str
    message: str


class FakeProvider:
    name = ""
    path = ""
    receipt_path = ""
    # outcome → possible receipt statuses (picked at random); each provider fills it in.
    receipt_statuses: dict[str, list] = {}

    def __init__(self, *, valid_keys: frozenset[str] | None = None):
        self.valid_keys = valid_keys

    def key_is_valid(self, key: str | None) -> bool:
        return bool(key) and (self.valid_keys is None or key in self.valid_keys)

    def read(self, body: bytes, headers: Message) -> tuple[dict, Send | None, Answer | None]:
        """The request's fields, and either the send or the answer refusing it."""
        raise NotImplementedError

    def accept(self, send: Send) -> tuple[Answer, str | None]:
        """The success answer and the provider's own reference (if it gives one)."""
        raise NotImplementedError

    def server_error(self, status: int) -> Answer:
        title = "Service Unavailable" if status == 503 else "Internal Server Error"
        return Answer.html(status, title)

    def malformed(self) -> list[Answer]:
        raise NotImplementedError

    def receipts(
        self,
        send: Send,
        provider_reference: str | None,
        outcome: str,
        *,
        rng: random.Random,
        now: datetime,
        delay: float,
    ) -> list[tuple[float, Receipt]]:
        """(seconds from now, receipt) pairs for this outcome."""
        stages = ["pending", "delivered"] if outcome == "pending-then-delivered" else [outcome]
        stages = [s for s in stages if s in self.receipt_statuses]
        planned = []
        for number, stage in enumerate(stages, start=1):
            at = now + timedelta(seconds=delay * number)
            status = rng.choice(self.receipt_statuses[stage])
            planned.append((delay * number, self.receipt(send, provider_reference, status, at)))
        return planned

    def receipt(
        self, send: Send, provider_reference: str | None, status: object, at: datetime
    ) -> Receipt:
        raise NotImplementedError

    def received_text_post(self, text: ReceivedText, at: datetime) -> Receipt:
        """The post telling the service of a received text, in this provider's format."""
        raise NotImplementedError(f"{self.name} posts no received texts")


class FiretextFake(FakeProvider):
    name = "firetext"
    path = "/firetext"
    receipt_path = "/notifications/sms/firetext"
    received_text_path = "/notifications/sms/receive/firetext"
    # (status, code): status 0 delivered, 1 declined with a detailed code, 2 pending.
    receipt_statuses = {
        "delivered": [("0", None)],
        "pending": [("2", None)],
        "permanent-failure": [("1", "101"), ("1", "201"), ("1", "301"), ("1", "401")],
        "temporary-failure": [("1", "102"), ("1", "103"), ("1", "104"), ("1", "302"), ("1", "900")],
    }

    def read(self, body, headers):
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if not self.key_is_valid(fields.get("apiKey")):
            return fields, None, self._answer(1, "Invalid apiKey")
        missing = [name for name in ("to", "message") if not fields.get(name)]
        if missing:
            return fields, None, self._answer(2, f"Missing {', '.join(missing)}")
        send = Send(
            to=fields["to"],
            reference=fields.get("reference") or None,
            receipt_url=fields.get("receipt") or None,
            source=fields.get("from"),
            message=fields["message"],
        )
        return fields, send, None

    def accept(self, send):
        return Answer.json(200, self._body(0, "SMS successfully queued", 1)), None

    def malformed(self):
        return [
            Answer(200, b""),
            Answer(200, b'{"data": [], "description": "SMS succ'),
            Answer.json(200, {"data": [], "description": "SMS successfully queued"}),
            Answer(200, b"OK", "text/plain"),
        ]

    def receipt(self, send, provider_reference, status, at):
        code_status, code = status
        fields = {"mobile": send.to, "status": code_status, "time": uk_local(at)}
        fields["reference"] = send.reference or ""
        if code is not None:
            fields["code"] = code
        return Receipt(
            provider=self.name,
            url=send.receipt_url or self.receipt_path,
            body=urlencode(fields).encode(),
            content_type="application/x-www-form-urlencoded",
            reference=send.reference,
            status=code_status if code is None else f"{code_status}/{code}",
        )

    def received_text_post(self, text, at):
        # Firetext's own id for it is not sent; its time is UTC.
        fields = {
            "source": text.source,
            "destination": text.destination,
            "message": text.message,
            "time": utc(at),
        }
        return Receipt(
            provider=self.name,
            url=self.received_text_path,
            body=urlencode(fields).encode(),
            content_type="application/x-www-form-urlencoded",
            reference=None,
            status="received-text",
        )

    def _answer(self, code: int, description: str) -> Answer:
        # Firetext reports refusals in the body, with HTTP 200.
        return Answer.json(200, self._body(code, description, 0))

    @staticmethod
    def _body(code: int, description: str, response_data: int) -> dict:
        return {"data": [], "description": description, "code": code, "responseData": response_data}


class MmgFake(FakeProvider):
    name = "mmg"
    path = "/mmg"
    receipt_path = "/notifications/sms/mmg"
    received_text_path = "/notifications/sms/receive/mmg"
    # (status, substatus); MMG has no pending receipt.
    receipt_statuses = {
        "delivered": [(3, 5), (3, 2)],
        "permanent-failure": [(2, 1), (2, 4), (5, 52)],
        "temporary-failure": [(4, 6), (4, 27), (4, 15)],
    }

    def __init__(self, *, valid_keys=None):
        super().__init__(valid_keys=valid_keys)
        self._references = itertools.count(10_000_000 + secrets.randbelow(10_000_000))

    def read(self, body, headers):
        try:
            fields = json.loads(body)
        except ValueError:
            return {"raw": body.decode("utf-8", "replace")}, None, self._error(206, "Invalid JSON")
        if not isinstance(fields, dict):
            return {"raw": fields}, None, self._error(206, "Invalid JSON")
        scheme, _, key = (headers.get("Authorization") or "").partition(" ")
        if scheme != "Basic" or not self.key_is_valid(key):
            return fields, None, self._error(201, "Authentication failed", status=401)
        missing = [name for name in ("MSISDN", "msg", "cid") if not fields.get(name)]
        if missing:
            return fields, None, self._error(206, f"Missing {', '.join(missing)}")
        send = Send(
            to=str(fields["MSISDN"]),
            reference=str(fields["cid"]),
            receipt_url=fields.get("delurl") or None,
            source=fields.get("sender"),
            message=str(fields["msg"]),
        )
        return fields, send, None

    def accept(self, send):
        reference = next(self._references)
        return Answer.json(200, {"Reference": reference}), str(reference)

    def malformed(self):
        return [
            Answer(200, b""),
            Answer(200, b'{"Refer'),
            Answer(200, b"<html><body>OK</body></html>", "text/html"),
        ]

    def receipt(self, send, provider_reference, status, at):
        mmg_status, substatus = status
        data = {
            "reference": provider_reference,
            "CID": send.reference,
            "MSISDN": send.to,
            "status": mmg_status,
            "substatus": substatus,
            "deliverytime": uk_local(at),
        }
        return Receipt(
            provider=self.name,
            url=send.receipt_url or self.receipt_path,
            body=json.dumps(data).encode(),
            content_type="application/json",
            reference=send.reference,
            status=f"{mmg_status}/{substatus}",
        )

    def received_text_post(self, text, at):
        # MMG URL-encodes the message and the time (`+` for spaces) inside its JSON; "sic".
        reference = secrets.token_hex(12)
        data = {
            "MSISDN": text.source,
            "Number": text.destination,
            "Message": quote_plus(text.message),
            "ID": reference,
            "DateRecieved": quote_plus(utc(at)),
        }
        return Receipt(
            provider=self.name,
            url=self.received_text_path,
            body=json.dumps(data).encode(),
            content_type="application/json",
            reference=reference,
            status="received-text",
        )

    @staticmethod
    def _error(code: int, description: str, status: int = 400) -> Answer:
        return Answer.json(status, {"Error": code, "Description": description})


# The SMS fakes the server runs, each at its `path` and with its own API keys
# (`runfakeproviders --<name>-api-keys`): a new provider's fake is its class and its line here.
SMS_FAKES: dict[str, type[FakeProvider]] = {fake.name: fake for fake in (FiretextFake, MmgFake)}


class SesFake(FakeProvider):
    name = "ses"
    path = "/v2/email/outbound-emails"
    receipt_path = "/notifications/email/ses"
    receipt_statuses = {
        "delivered": [("Delivery", None, None)],
        "permanent-failure": [
            ("Bounce", "Permanent", "General"),
            ("Bounce", "Permanent", "NoEmail"),
        ],
        "temporary-failure": [
            ("Bounce", "Transient", "General"),
            ("Bounce", "Transient", "MailboxFull"),
        ],
    }

    def __init__(self, *, valid_keys=None, region: str = "eu-west-1", topic_arn: str | None = None):
        super().__init__(valid_keys=valid_keys)
        self.region = region
        self.topic_arn = topic_arn or f"arn:aws:sns:{region}:123456789012:notify-ses-receipts"

    def read(self, body, headers):
        try:
            fields = json.loads(body)
        except ValueError:
            return {}, None, self._error(400, "BadRequestException", "Request body is not JSON")
        if not isinstance(fields, dict):
            return {}, None, self._error(400, "BadRequestException", "Request body is not JSON")
        to = (fields.get("Destination") or {}).get("ToAddresses") or []
        simple = (fields.get("Content") or {}).get("Simple") or {}
        if not fields.get("FromEmailAddress") or not to or not simple:
            return fields, None, self._error(400, "BadRequestException", "Missing required field")
        send = Send(
            to=to[0],
            reference=None,
            source=fields["FromEmailAddress"],
            subject=(simple.get("Subject") or {}).get("Data"),
        )
        return fields, send, None

    def accept(self, send):
        message_id = f"{secrets.token_hex(8)}-{uuid.uuid4()}-000000"
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        return Answer.json(200, {"MessageId": message_id}, headers), message_id

    def server_error(self, status):
        code = "ServiceUnavailable" if status == 503 else "InternalFailure"
        return self._error(status, code, "Service unavailable, try again")

    def malformed(self):
        return [Answer(200, b"not json at all", "text/plain"), Answer.json(200, {})]

    def receipt(self, send, provider_reference, status, at):
        kind, bounce_type, bounce_subtype = status
        message = {"notificationType": kind, "mail": self._mail(send, provider_reference, at)}
        when = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if kind == "Delivery":
            message["delivery"] = {
                "timestamp": when,
                "processingTimeMillis": 546,
                "recipients": [send.to],
                "smtpResponse": "250 ok",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            }
        else:
            permanent = bounce_type == "Permanent"
            message["bounce"] = {
                "bounceType": bounce_type,
                "bounceSubType": bounce_subtype,
                "bouncedRecipients": [
                    {
                        "emailAddress": send.to,
                        "action": "failed",
                        "status": "5.1.1" if permanent else "4.4.7",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                        if permanent
                        else "smtp; 452 4.2.2 mailbox full",
                    }
                ],
                "timestamp": when,
                "feedbackId": f"{secrets.token_hex(8)}-{uuid.uuid4()}-000000",
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
            }
        notification_id = str(uuid.uuid4())
        envelope = {
            "Type": "Notification",
            "MessageId": notification_id,
            "TopicArn": self.topic_arn,
            "Message": json.dumps(message),
            "Timestamp": when,
            # Unsigned: the service runs with SNS_VERIFY_SIGNATURES=false against this fake.
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertURL": "",
            "UnsubscribeURL": "",
        }
        return Receipt(
            provider=self.name,
            url=self.receipt_path,
            body=json.dumps(envelope).encode(),
            # Real SNS posts JSON labelled as text/plain.
            content_type="text/plain; charset=UTF-8",
            reference=provider_reference,
            status=kind if bounce_type is None else f"{kind}/{bounce_type}",
            headers={
                "x-amz-sns-message-type": "Notification",
                "x-amz-sns-message-id": notification_id,
                "x-amz-sns-topic-arn": self.topic_arn,
            },
        )

    def _mail(self, send: Send, message_id: str | None, at: datetime) -> dict:
        sent = (at - timedelta(seconds=1)).astimezone(UTC)
        return {
            "timestamp": sent.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "messageId": message_id,
            "source": send.source,
            "sourceArn": f"arn:aws:ses:{self.region}:123456789012:identity/{send.source}",
            "sendingAccountId": "123456789012",
            "destination": [send.to],
            "headersTruncated": False,
            "commonHeaders": {
                "from": [send.source],
                "to": [send.to],
                "messageId": message_id,
                "subject": send.subject,
            },
        }

    @staticmethod
    def _error(status: int, code: str, message: str) -> Answer:
        # botocore's REST-JSON parser takes the code from this header.
        return Answer.json(status, {"message": message}, {"x-amzn-ErrorType": code})
