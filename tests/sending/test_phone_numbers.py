import pytest

from sending.phone_numbers import InvalidPhoneNumber, normalise_phone_number


@pytest.mark.parametrize(
    "raw",
    [
        "07700900123",
        "07700 900123",
        "07700-900-123",
        "(07700) 900123",
        "+44 7700 900123",
        "+44 (0)7700 900123",
        "447700900123",
        "0044 7700 900123",
        "7700900123",
    ],
)
def test_uk_mobiles_in_any_common_form_are_normalised(raw):
    number = normalise_phone_number(raw)
    assert number.digits == "447700900123"
    assert not number.international


@pytest.mark.parametrize(
    ("raw", "digits"),
    [("+1 202 555 0143", "12025550143"), ("0033 6 12 34 56 78", "33612345678")],
)
def test_international_numbers_need_a_leading_plus_or_00(raw, digits):
    number = normalise_phone_number(raw)
    assert number.digits == digits
    assert number.international


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("020 7946 0000", "Not a UK mobile number"),
        ("12025550143", "Not a UK mobile number"),
        ("07700 90012", "not enough digits"),
        ("07700 9001234", "too many digits"),
        ("07700 9OO123", "Must not contain letters or symbols"),
        ("+1 555", "Not a valid international number"),
        ("", "Must not contain letters or symbols"),
    ],
)
def test_bad_numbers_say_what_is_wrong(raw, message):
    with pytest.raises(InvalidPhoneNumber, match=message):
        normalise_phone_number(raw)
