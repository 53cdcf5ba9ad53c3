"""Firetext: receipts (a form post with status, reference (our id), time and code) and
received texts (a form post with source, destination, message and time)."""

import logging
from urllib.parse import urlencode

from receipts.parsers.base import (
    DELIVERED,
    PENDING,
    PERMANENT_FAILURE,
    TEMPORARY_FAILURE,
    ReceiptParser,
    ReceivedTextEvent,
    StatusReceipt,
    uk_time_now,
)


class FiretextReceiptParser(ReceiptParser):
    """Form-encoded: mobile, status, time, reference (our notification id), code (optional)."""

    name = "firetext"
    display_name = "Firetext"
    content_types = ("application/x-www-form-urlencoded",)

    @classmethod
    def simulated_bodies(cls, notification, outcome: str) -> list[tuple[str, str]]:
        """Delivered is status 0; declined is status 1 with its code (101 Unknown Subscriber, 102
        Absent Subscriber); a temporary failure comes as `pending` (status 2) first."""
        common = {"mobile": notification.recipient, "reference": str(notification.id)}
        if outcome == DELIVERED:
            steps = [{"status": "0"}]
        elif outcome == PERMANENT_FAILURE:
            steps = [{"status": "1", "code": "101"}]
        else:
            steps = [{"status": "2"}, {"status": "1", "code": "102"}]
        return [
            (cls.content_types[0], urlencode({**common, **step, "time": uk_time_now()}))
            for step in steps
        ]

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
        if problems:
            raise self.invalid(*problems)
        reported_at = self.local_time("time", fields.get("time", "").strip(), reference)

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
            return self.unknown_status(status, reference, **receipt)
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


class FiretextInboundParser(ReceiptParser):
    """A received text, form-encoded: source (the sender), destination (our number), message,
    time (UTC). Firetext sends no id of its own, so a repeat can't be told from a new text."""

    name = "firetext-inbound"
    display_name = "Firetext"
    content_types = ("application/x-www-form-urlencoded",)

    def parse_body(self, body: str) -> ReceivedTextEvent:
        fields = self.form_fields(body)
        problems = self.missing(
            source=fields.get("source", "").strip(),
            destination=fields.get("destination", "").strip(),
        )
        if "message" not in fields:
            problems.append("message missing")
        if problems:
            raise self.invalid(*problems)
        return self.received_text(
            provider="firetext",
            source=fields["source"],
            destination=fields["destination"],
            content=fields["message"],
            provider_date=self.utc_time("time", fields.get("time", ""), fields["destination"]),
        )
