"""What every receipt parser shares (contract section 6): the events a receipt (or a received
text) can carry, the refusal, and a small base whose `parse` checks the content type and hands
the body to the provider's `parse_body`.

A parser is pure: it reads no settings and makes no network call (what it needs, such as SES's
signature verifier and topic allow-list, is handed to it), and touches no database, so a stored
receipt can be parsed again at any time (`manage.py replay_receipts`) with the same result.
A receipt is refused (400) only when it lacks our id or a status or cannot be read at all; a bad
optional field (a time that does not parse, an unknown code) is logged at WARNING and the receipt
applied without it.
"""

import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from django.utils import timezone

from receipts.inbound_numbers import inbound_number_normalise
from sending.models import NotificationStatus
from sending.phone_numbers import InvalidPhoneNumber, normalise_phone_number
from sending.text_rules import UNSTORABLE

logger = logging.getLogger("receipts.parsers")

DELIVERED = NotificationStatus.DELIVERED
PENDING = NotificationStatus.PENDING
PERMANENT_FAILURE = NotificationStatus.PERMANENT_FAILURE
TEMPORARY_FAILURE = NotificationStatus.TEMPORARY_FAILURE
TECHNICAL_FAILURE = NotificationStatus.TECHNICAL_FAILURE

# Firetext and MMG report UK local time.
UK = ZoneInfo("Europe/London")

# A time a receipt reports is kept only inside these bounds: no text or email of ours was sent
# before 2000 or will be after 2100, and no place is further than 14 hours from UTC. Fixed
# bounds, not "now", so a replay years later parses a receipt as it was parsed the day it came.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
LARGEST_OFFSET = timedelta(hours=14)

MAX_FORM_FIELDS = 50
# A received text's numbers and MMG's ID are kept in columns of this size.
MAX_NUMBER_LENGTH = 255
# A `%` not followed by two hex digits: `parse_qsl` would keep it as it is (`status=%zz` would
# read as a status "%zz"), but it is no form encoding.
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


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


@dataclass(frozen=True)
class ReceivedTextEvent:
    """Someone texted one of our numbers (`notify_number`, kept as `inbound_number_normalise`
    keeps it); `provider_date` None when the provider gave no time we could read."""

    provider: str
    user_number: str
    notify_number: str
    content: str
    provider_reference: str = ""
    provider_date: datetime | None = None

    @property
    def reference(self) -> str:
        return self.provider_reference


ReceiptEvent = (
    StatusReceipt
    | ComplaintReceipt
    | SubscriptionConfirmation
    | SubscriptionNotice
    | ReceivedTextEvent
)


class ReceiptParser:
    name: str
    display_name: str
    content_types: tuple[str, ...]
    # Set for the web's reading, which only decides the answer: the inbox drain reads the
    # receipt again and logs what it finds, once.
    quiet = False

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

    @classmethod
    def simulated_bodies(cls, notification, outcome: str) -> list[tuple[str, str]]:
        """The receipt(s) this provider would post, as (content type, body), for `notification`
        (its `id` and `recipient`) ending `delivered`, `temporary-failure` or
        `permanent-failure`: what a test key's send is answered with (`receipts.simulated`).
        Beside the parser, so the body made is the one it reads."""
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

    def json_loads(self, text: str, problem: str):
        """JSON as a receipt carries it: lone surrogates and NULs in strings become U+FFFD, and
        JSON nested too deeply to read is refused like any other that can't be read."""
        try:
            return json.loads(text, object_pairs_hook=_clean_object)
        except (ValueError, RecursionError):
            raise self.invalid(problem) from None

    def json_object(self, text: str, problem: str, *, not_an_object: str | None = None) -> dict:
        """`json_loads`, and an object (a dict) or refused: with `problem`, or with
        `not_an_object` where the answer says which."""
        value = self.json_loads(text, problem)
        if not isinstance(value, dict):
            raise self.invalid(not_an_object or problem)
        return value

    def checked_time(self, field: str, moment: datetime, reference: str) -> datetime | None:
        """A time that parsed, kept only when it is a time a receipt could report (see
        EARLIEST_TIME): otherwise logged and left out, like one that does not parse."""
        offset = moment.utcoffset()
        try:
            in_utc = moment.astimezone(UTC)
        except (OverflowError, ValueError):
            in_utc = None
        if (
            offset is None
            or abs(offset) > LARGEST_OFFSET
            or in_utc is None
            or not EARLIEST_TIME <= in_utc < LATEST_TIME
        ):
            self.log_bad_field(
                field, str(moment), reference, "is out of range (2000 to 2100, offset ±14:00)"
            )
            return None
        return moment

    def local_time(self, field: str, value: str, reference: str) -> datetime | None:
        """`2016-03-10 14:17:00` in UK local time, or with an offset (`+0200`). An optional
        field: one that does not parse is logged and left out, and the receipt still applies."""
        if not value:
            return None
        for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%z"):
            try:
                moment = datetime.strptime(value.strip(), layout)
            except ValueError:
                continue
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UK)
            return self.checked_time(field, moment, reference)
        self.log_bad_field(field, value, reference, "is not a time (expected YYYY-MM-DD HH:MM:SS)")
        return None

    def utc_time(self, field: str, value: str, reference: str) -> datetime | None:
        """`2017-05-21 11:56:11` in UTC (received texts' times, as GOV.UK Notify reads them).
        Optional: one that does not parse is logged and left out."""
        if not value:
            return None
        try:
            moment = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            self.log_bad_field(
                field, value, reference, "is not a time (expected YYYY-MM-DD HH:MM:SS)"
            )
            return None
        return self.checked_time(field, moment, reference)

    def received_text(
        self,
        *,
        provider: str,
        source: str,
        destination: str,
        content: str,
        provider_reference: str = "",
        provider_date: datetime | None = None,
    ) -> ReceivedTextEvent:
        """A received text: the sender normalised as the API normalises a mobile (kept as given
        when it is not one), our number as inbound numbers are kept, the content as sent."""
        too_long = [
            f"{field} is too long"
            for field, value in (("source", source), ("destination", destination))
            if len(value) > MAX_NUMBER_LENGTH
        ]
        if len(provider_reference) > MAX_NUMBER_LENGTH:
            too_long.append("ID is too long")
        if too_long:
            raise self.invalid(*too_long)
        try:
            user_number = normalise_phone_number(source).digits
        except InvalidPhoneNumber:
            user_number = source.strip()
        return ReceivedTextEvent(
            provider=provider,
            user_number=user_number,
            notify_number=inbound_number_normalise(destination),
            content=content,
            provider_reference=provider_reference,
            provider_date=provider_date,
        )

    def form_fields(self, body: str) -> dict[str, str]:
        """The first value of each field of a form post; a body that is not `key=value&…` is
        refused."""
        pairs = [pair for pair in body.split("&") if pair]
        if (
            len(pairs) > MAX_FORM_FIELDS
            or any("=" not in pair for pair in pairs)
            or _BROKEN_ESCAPE.search(body)
        ):
            raise self.invalid("body is not form-encoded")
        try:
            parsed = parse_qsl(body, keep_blank_values=True, errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise self.invalid("body is not form-encoded") from None
        fields: dict[str, str] = {}
        for key, value in parsed:  # (%00 decodes to a NUL, which no database can keep)
            fields.setdefault(storable(key), storable(value))
        return fields

    def log_bad_field(self, field: str, value: str, reference: str, problem: str) -> None:
        if self.quiet:
            return
        logger.warning(
            f"{self.name} receipt with a bad {field}: applied without it",
            extra={
                "provider": self.name,
                field: value[:100],
                "problem": problem,
                "reference": reference,
            },
        )

    def unknown_status(self, status: str, reference: str, **receipt) -> "StatusReceipt":
        """A status not in the map: `technical-failure`, logged at ERROR, answered 400."""
        self.log_unknown("status", status, reference, level=logging.ERROR)
        return StatusReceipt(
            status=TECHNICAL_FAILURE,
            problems=(self.message(f"status {status} not found"),),
            **receipt,
        )

    def log_unknown(self, what: str, value: str, reference: str, *, level: int) -> None:
        if self.quiet:
            return
        logger.log(
            level,
            f"{self.name} receipt with unknown {what}",
            extra={"provider": self.name, what: value, "reference": reference},
        )


def storable(value):
    """Text a database can keep: lone surrogates and NUL become U+FFFD (not text: unchanged)."""
    return UNSTORABLE.sub("\ufffd", value) if isinstance(value, str) else value


def _clean_object(pairs: list[tuple]) -> dict:
    """A JSON object with lone surrogates and NULs replaced in its keys and string values (a
    repeated key keeps its last value, as `json` does without this hook)."""
    return {storable(key): storable(value) for key, value in pairs}


def uk_time_now() -> str:
    """Now as Firetext and MMG write a time: UK local, no zone."""
    return timezone.now().astimezone(UK).strftime("%Y-%m-%d %H:%M:%S")
