import pytest

from console.masking import recipient_mask, text_mask


@pytest.mark.parametrize(
    ("recipient", "masked"),
    [
        ("447700900123", "4477******23"),
        ("jane@example.com", "j***@example.com"),
        ("+33612345678", "+336******78"),
        ("12345", "*****"),
    ],
)
def test_recipient_mask(recipient, masked):
    assert recipient_mask(recipient) == masked


@pytest.mark.parametrize(
    ("body", "hidden"),
    [
        ("mobile=447700900123&status=0", "447700900123"),
        ("mobile=%2B447700900123&status=0", "447700900123"),
        ('{"MSISDN": "447700900123"}', "447700900123"),
        ('{"destination": ["jane.doe@example.com"]}', "jane.doe@example.com"),
        ("to=jane.doe%40example.com", "jane.doe%40example.com"),
        ("call +44 7700 900123 now", "7700 900123"),
    ],
)
def test_text_mask_hides_numbers_and_addresses(body, hidden):
    masked = text_mask(body)
    assert hidden not in masked
    assert "*" in masked


def test_text_mask_keeps_ids_and_times():
    body = "reference=0b8f5a3c-1d2e-4f60-9a7b-123456789012&time=2016-03-10+14%3A17%3A00&code=101"
    assert text_mask(body) == body
