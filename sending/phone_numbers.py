"""Normalise phone numbers: UK mobiles to `447700900123`, international numbers to E.164 digits."""

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s\-().]")
UK_PREFIX = "44"


class InvalidPhoneNumber(ValueError):
    pass


@dataclass(frozen=True)
class PhoneNumber:
    digits: str  # country code and number, no "+"

    @property
    def international(self) -> bool:
        return not self.digits.startswith(UK_PREFIX)


def normalise_phone_number(raw: str) -> PhoneNumber:
    number = _SEPARATORS.sub("", raw)
    explicit_country = number.startswith(("+", "00"))
    number = number.removeprefix("+") if number.startswith("+") else number
    if number.startswith("00") and explicit_country:
        number = number[2:]
    # ASCII digits only: str.isdigit() also takes "²" and "٧".
    if not (number.isascii() and number.isdigit()):
        raise InvalidPhoneNumber("Must not contain letters or symbols")
    if explicit_country and not number.startswith(UK_PREFIX):
        if not 8 <= len(number) <= 15 or number.startswith("0"):
            raise InvalidPhoneNumber("Not a valid international number")
        return PhoneNumber(number)
    national = number.removeprefix(UK_PREFIX) if number.startswith(UK_PREFIX) else number
    national = national.removeprefix("0")
    if not national.startswith("7"):
        raise InvalidPhoneNumber("Not a UK mobile number")
    if len(national) != 10:
        raise InvalidPhoneNumber(
            f"Not a UK mobile number: {'too many' if len(national) > 10 else 'not enough'} digits"
        )
    return PhoneNumber(UK_PREFIX + national)


def _phone_number_pattern() -> str:
    """`normalise_phone_number`'s rules as one regular expression, for the OpenAPI schema (so
    that a client, or a fuzzer, knows which strings are accepted): separators anywhere, then a
    `+`/`00` international number of 8-15 digits not starting with 0 (a UK one when it starts
    with 44), or a UK mobile with or without 44 and 0. Whitespace is spelled out so that the
    schema's engines (ECMA, Rust) agree with Python's `\\s`, which also takes U+001C-U+001F."""
    sep = r"[\s\x1c-\x1f().-]*"
    uk_national = rf"(?:0{sep})?7(?:{sep}[0-9]){{9}}"
    international = rf"[1-35-9](?:{sep}[0-9]){{7,14}}|4{sep}[0-35-9](?:{sep}[0-9]){{6,13}}"
    explicit = rf"(?:\+{sep}|(?:\+{sep})?0{sep}0{sep})(?:4{sep}4{sep}{uk_national}|{international})"
    domestic = rf"(?:4{sep}4{sep})?{uk_national}"
    return rf"^{sep}(?:{explicit}|{domestic}){sep}$"


PHONE_NUMBER_PATTERN = _phone_number_pattern()
