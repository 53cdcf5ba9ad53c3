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
    if not number.isdigit():
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
