"""The one masking rule (notifyproject.masking): decided by the field a value is under, never by
what the value looks like. The log formatter and the console pages are tested with it in
tests/test_logging.py and tests/console/."""

import json

import pytest

from notifyproject.masking import data_mask, recipient_mask, text_mask
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("recipient", "masked"),
    [
        ("447700900123", "4477******23"),
        ("jane@example.com", "j***@example.com"),
        ("+33612345678", "+336******78"),
        ("12345", "*****"),
        (447700900123, "4477******23"),  # MMG may send the number as a JSON number
    ],
)
def test_recipient_mask(recipient, masked):
    assert recipient_mask(recipient) == masked
    assert recipient_mask(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize(
    ("body", "hidden", "shown"),
    [
        ("mobile=447700900123&status=0", "447700900123", "mobile=4477******23"),
        ("mobile=%2B447700900123&status=0", "447700900123", "mobile=%2B447*******23"),
        ('{"MSISDN": "447700900123"}', "447700900123", '"MSISDN": "4477******23"'),
        ('{"destination": ["jane.doe@example.com"]}', "jane.doe", '["j***@example.com"]'),
        ("to=jane.doe%40example.com", "jane.doe", "to=j***%40example.com"),
        ('{"phone_number": "07700900123"}', "07700900123", "0770*****23"),
        ('{"user_number": "447700900123"}', "447700900123", "4477******23"),
        ("source=447700900123&destination=40604", "447700900123", "source=4477******23"),
        # cut short: read as pairs, still by field
        ('{"reference": "1", "MSISDN": "4477009001', "4477009001", '"MSISDN": "4477****01'),
    ],
)
def test_text_mask_masks_recipient_fields(body, hidden, shown):
    masked = text_mask(body)
    assert hidden not in masked
    assert shown in masked


@pytest.mark.parametrize(
    "body",
    [
        "reference=0b8f5a3c-1d2e-4f60-9a7b-123456789012&time=2016-03-10+14%3A17%3A00&code=101",
        # a number under a field that holds no recipient: kept whole, whatever it looks like
        '{"reference": "12345678", "status": "3"}',
        "reference=447700900123&status=0",
        "call +44 7700 900123 now",  # free text: no field says what it is
    ],
)
def test_text_mask_keeps_what_no_recipient_field_holds(body):
    assert text_mask(body) == body


def test_mmg_reference_stays_whole_while_the_msisdn_is_masked():
    body = (FIXTURES / "mmg_receipts" / "delivered_numbers.json").read_text()
    masked = json.loads(text_mask(body))
    assert masked["reference"] == 12345678
    assert masked["MSISDN"] == "4477******23"


def test_sns_wrapped_ses_mail_is_masked_inside_the_message():
    mail = json.loads((FIXTURES / "ses_receipts" / "mail.json").read_text())
    bounce = json.loads((FIXTURES / "ses_receipts" / "bounce_permanent.json").read_text())
    bounce["mail"] = mail
    bounce["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "550 <jane@example.com> unknown"
    envelope = json.loads((FIXTURES / "ses_receipts" / "sns_notification.json").read_text())
    envelope["Message"] = json.dumps(bounce)
    masked = text_mask(json.dumps(envelope, indent=2))
    assert "jane@" not in masked
    message = json.loads(json.loads(masked)["Message"])
    assert message["mail"]["destination"] == ["j***@example.com"]
    assert message["mail"]["commonHeaders"]["to"] == ["j***@example.com"]
    assert {"name": "To", "value": "j***@example.com"} in message["mail"]["headers"]
    assert message["bounce"]["bouncedRecipients"][0]["emailAddress"] == "j***@example.com"
    # the address quoted in free text is masked because a field named it a recipient
    assert message["bounce"]["bouncedRecipients"][0]["diagnosticCode"] == (
        "550 <j***@example.com> unknown"
    )
    assert message["mail"]["messageId"] == mail["messageId"]


def test_a_recipient_the_caller_knows_is_masked_in_free_text():
    assert text_mask("Invalid number 447700900123", recipients=["447700900123"]) == (
        "Invalid number 4477******23"
    )


def test_data_mask_keeps_the_shape():
    payload = {"id": "n-1", "reference": "12345678", "to": "447700900123", "status": "delivered"}
    assert data_mask(payload) == {**payload, "to": "4477******23"}
