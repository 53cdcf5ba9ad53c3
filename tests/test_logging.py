import json
import logging

from notifyproject.logging import KeyValueFormatter
from notifyproject.masking import text_mask


def format_record(message: str, *args, **extra) -> str:
    record = logging.makeLogRecord(
        {"name": "t", "levelname": "INFO", "msg": message, "args": args, **extra}
    )
    return KeyValueFormatter().format(record)


def test_a_line_is_key_value_pairs_with_extras():
    line = format_record("sent", provider="firetext", duration_ms=12)
    assert "\n" not in line
    assert "level=INFO logger=t event=sent" in line
    assert "provider=firetext duration_ms=12" in line


def test_recipient_fields_are_masked_by_the_consoles_rule():
    line = format_record(
        "sms sent to=447700900123",
        to="447700900123",
        email_address="someone@example.com",
        recipients=["jane@example.com"],
    )
    assert "7700900123" not in line
    assert "someone@" not in line and "jane@" not in line
    assert 'event="sms sent to=4477******23"' in line
    assert "to=4477******23" in line
    assert "email_address=s***@example.com" in line
    assert "recipients=['j***@example.com']" in line


def test_a_number_under_another_field_is_kept_whole():
    """MMG's reference is a sequential number: the field decides, not the look of the value."""
    line = format_record("receipt processed", reference="1234567890", provider="mmg")
    assert "reference=1234567890" in line


def test_a_body_in_a_line_is_masked_as_the_console_masks_it():
    body = json.dumps({"reference": "1234567890", "MSISDN": "447700900123", "status": "3"})
    line = format_record("receipt refused", body=body, problem="mobile=447700900123&status=0")
    assert "447700900123" not in line
    assert f"body={json.dumps(text_mask(body))}" in line
    assert 'problem="mobile=4477******23&status=0"' in line
    assert '\\"reference\\": \\"1234567890\\"' in line


def test_a_traceback_stays_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = format_record("failed", exc_info=sys.exc_info())
    assert "\n" not in line
    assert "ValueError: boom" in line
