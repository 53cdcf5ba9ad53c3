"""`sms_fragment_count`: the parts of contract section 4 at every boundary."""

import pytest

from sending.fragments import MAX_SMS_FRAGMENTS, sms_fragment_count, sms_too_long_message

EXTENSION = "^{}[]~\\|€\f"

CASES = [
    # GSM 03.38: one part up to 160, then 153 a part.
    ("a", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("a" * 459, 3),
    ("a" * 460, 4),
    ("a" * 918, 6),
    ("a" * 919, 7),
    # The rest of the default alphabet is GSM too, and counts once.
    ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà\n\r", 1),
    ("Ä" * 160, 1),
    ("Ä" * 161, 2),
    # Each character of the extension table counts twice.
    ("{" * 80, 1),
    ("{" * 81, 2),
    ("a" * 159 + "€", 2),
    ("a" * 158 + "€", 1),
    ("a" * 916 + "^", 6),
    ("a" * 917 + "^", 7),
    (EXTENSION, 1),
    (EXTENSION * 8, 1),  # 80 characters, 160 septets
    (EXTENSION * 8 + "a", 2),
    # One character outside the alphabet makes the whole text UCS-2: 70, then 67 a part.
    ("ç" * 70, 1),
    ("ç" * 71, 2),
    ("a" * 69 + "ç", 1),
    ("a" * 70 + "ç", 2),
    ("ç" * 134, 2),
    ("ç" * 135, 3),
    ("ç" * 402, 6),
    ("ç" * 403, 7),
    ("a" * 150 + "’", 3),  # a curly apostrophe: 151 UCS-2 units
    # UCS-2 counts extension characters once: they are ordinary UTF-16 units there.
    ("{" * 69 + "ç", 1),
    # An emoji outside the Basic Multilingual Plane is two UTF-16 code units.
    ("😀" * 35, 1),
    ("😀" * 36, 2),
    ("a" * 68 + "😀", 1),
    ("a" * 69 + "😀", 2),
    ("😀" * 201, 6),
    ("😀" * 202, 7),
    # A lone surrogate (JSON allows "\ud800") is one unit, not an error.
    ("\ud800", 1),
    ("", 0),
]


@pytest.mark.parametrize(("content", "parts"), CASES, ids=[f"{len(c)}-{p}" for c, p in CASES])
def test_parts_at_every_boundary(content, parts):
    assert sms_fragment_count(content) == parts


def test_the_refusal_names_the_limit_and_the_count():
    assert MAX_SMS_FRAGMENTS == 6
    assert sms_too_long_message(7) == (
        "Text messages cannot be longer than 6 parts (918 GSM characters or 402 others), "
        "this one is 7 parts"
    )
