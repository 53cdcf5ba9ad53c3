import logging

from notifyproject.logging import KeyValueFormatter, mask_recipient


def format_record(message: str, *args, **extra) -> str:
    record = logging.makeLogRecord(
        {"name": "t", "levelname": "INFO", "msg": message, "args": args, **extra}
    )
    return KeyValueFormatter().format(record)


def test_mask_recipient_hides_the_middle_of_a_number_and_the_local_part_of_an_address():
    assert mask_recipient("447700900123") == "4477*****123"
    assert mask_recipient("someone@example.com") == "s***@example.com"


def test_a_line_is_key_value_pairs_with_extras():
    line = format_record("sent", provider="firetext", duration_ms=12)
    assert "\n" not in line
    assert "level=INFO logger=t event=sent" in line
    assert "provider=firetext duration_ms=12" in line


def test_no_full_phone_number_or_email_address_reaches_a_line():
    line = format_record(
        "to %s and %s", "+44 7700 900123", "someone@example.com", to="447700900123"
    )
    assert "7700900123" not in line.replace(" ", "")
    assert "someone@" not in line
    assert "s***@example.com" in line


def test_a_traceback_stays_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = format_record("failed", exc_info=sys.exc_info())
    assert "\n" not in line
    assert "ValueError: boom" in line
