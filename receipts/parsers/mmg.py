"""MMG: receipts (JSON with CID (our id), status, substatus and deliverytime) and received
texts (JSON with MSISDN, Number, a URL-encoded Message, ID and DateRecieved)."""

import json
import logging
import re
from urllib.parse import unquote_plus

from receipts.parsers.base import (
    DELIVERED,
    PERMANENT_FAILURE,
    TEMPORARY_FAILURE,
    ReceiptParser,
    ReceivedTextEvent,
    StatusReceipt,
    storable,
    uk_time_now,
)

# Our status → MMG's (status, substatus) in a simulated receipt: Delivered to handset, Expired,
# Invalid destination.
_SIMULATED_STATUSES = {
    DELIVERED: ("3", "5"),
    TEMPORARY_FAILURE: ("4", "15"),
    PERMANENT_FAILURE: ("5", "52"),
}

# MMG posts a JSON object; any other JSON is refused with this.
NOT_AN_OBJECT = "invalid json (expected an object)"

# MMG escapes these in a received text's Message with a backslash (after URL-encoding it), as
# GOV.UK Notify's reading of it shows; only these, so any other backslash is kept as sent.
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "'": "'", '"': '"', "\\": "\\"}
_ESCAPED = re.compile(r"\\([nrt'\"\\])")


class MmgReceiptParser(ReceiptParser):
    """JSON: reference (MMG's id), CID (our notification id), MSISDN, status, substatus,
    deliverytime."""

    name = "mmg"
    display_name = "MMG"
    content_types = ("application/json", "text/plain")

    @classmethod
    def simulated_bodies(cls, notification, outcome: str) -> list[tuple[str, str]]:
        status, substatus = _SIMULATED_STATUSES[outcome]
        body = {
            "reference": f"simulated-{notification.id.hex[:12]}",
            "CID": str(notification.id),
            "MSISDN": notification.recipient,
            "status": status,
            "substatus": substatus,
            "deliverytime": uk_time_now(),
        }
        return [(cls.content_types[0], json.dumps(body))]

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
        data = self.json_object(body, "invalid json", not_an_object=NOT_AN_OBJECT)
        problems: list[str] = []
        status = self.text(data, "status", problems)
        cid = self.text(data, "CID", problems)
        problems += self.missing(status=status, CID=cid)
        if problems:
            raise self.invalid(*problems)
        notification_id = self.notification_id("CID", cid, problems)
        if problems:
            raise self.invalid(*problems)
        substatus = self.optional_text(data, "substatus", cid)
        reported_at = self.local_time(
            "deliverytime", self.optional_text(data, "deliverytime", cid), cid
        )

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
            return self.unknown_status(status, cid, **receipt)
        return StatusReceipt(status=self.statuses[status], **receipt)

    def optional_text(self, data: dict, field: str, reference: str) -> str:
        """An optional field as text; one that is neither text nor a number is logged and left
        out."""
        problems: list[str] = []
        value = self.text(data, field, problems)
        if problems:
            self.log_bad_field(field, repr(data.get(field)), reference, problems[0])
            return ""
        return value

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


class MmgInboundParser(ReceiptParser):
    """A received text, JSON: MSISDN (the sender), Number (our number), Message (URL-encoded,
    `+` for spaces), ID (MMG's, the same on a repeat), DateRecieved (sic; URL-encoded, UTC)."""

    name = "mmg-inbound"
    display_name = "MMG"
    content_types = ("application/json", "text/plain")

    def parse_body(self, body: str) -> ReceivedTextEvent:
        data = self.json_object(body, "invalid json", not_an_object=NOT_AN_OBJECT)
        problems: list[str] = []
        source = MmgReceiptParser.text(data, "MSISDN", problems)
        destination = MmgReceiptParser.text(data, "Number", problems)
        reference = MmgReceiptParser.text(data, "ID", problems)
        problems += self.missing(MSISDN=source, Number=destination)
        message = data.get("Message")
        if message is None:
            problems.append("Message missing")
        elif not isinstance(message, str):
            problems.append("Message must be a string")
        problems += self.missing(ID=reference)
        if problems:
            raise self.invalid(*problems)
        received = data.get("DateRecieved")
        received = mmg_decoded(received) if isinstance(received, str) else ""
        return self.received_text(
            provider="mmg",
            source=source,
            destination=destination,
            content=mmg_message(message),
            provider_reference=reference,
            provider_date=self.utc_time("DateRecieved", received, reference),
        )


def mmg_decoded(value: str) -> str:
    """URL-decoded, `+` for a space; bytes that are not UTF-8 become U+FFFD (the text is kept
    all the same)."""
    return storable(unquote_plus(value, errors="replace"))


def mmg_message(value: str) -> str:
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group(1)], mmg_decoded(value))
