"""Firetext receipts: a form post with status, reference (our id), time and code."""

import logging
import re
from urllib.parse import parse_qsl

from callbacks.models import ReceiptProvider
from callbacks.parsers.base import (
    DELIVERED,
    PENDING,
    PERMANENT_FAILURE,
    TEMPORARY_FAILURE,
    ReceiptParser,
    StatusReceipt,
    storable,
)

MAX_FORM_FIELDS = 50
# A `%` not followed by two hex digits: `parse_qsl` would keep it as it is (`status=%zz` would
# read as a status "%zz"), but it is no form encoding.
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


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

    def form_fields(self, body: str) -> dict[str, str]:
        """The first value of each field; a body that is not `key=value&…` is refused."""
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
