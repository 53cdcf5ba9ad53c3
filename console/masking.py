"""What the console shows of a recipient: enough to recognise it, never the whole of it."""

import re

# A phone number: 8+ digits (maybe with spaces), not inside a UUID or a word, or after a
# form-encoded `+` (`%2B`); an email address, also form-encoded (`%40`).
_PHONE = re.compile(r"(?:(?<=%2B)|(?<=%2b)|(?<![\w-]))\+?\d[\d ]{6,}\d(?![\w-])")
_EMAIL = re.compile(r"([\w.%+-])[\w.%+-]*(@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)")


def recipient_mask(recipient: str) -> str:
    """`447700900123` → `4477******23`; `jane@example.com` → `j***@example.com`."""
    if "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if len(recipient) <= 6:
        return "*" * len(recipient)
    return f"{recipient[:4]}{'*' * (len(recipient) - 6)}{recipient[-2:]}"


def text_mask(text: str) -> str:
    """Every phone number and email address in `text` (a raw receipt body) masked."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}{m.group(3)}", text)
    return _PHONE.sub(lambda m: recipient_mask(re.sub(r"\D", "", m.group(0))), text)
