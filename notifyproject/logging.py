"""One line per event, `key=value` pairs, and never a full phone number or email address."""

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

# Anything that looks like a phone number (9+ digits, maybe with + and spaces) or an email
# address is masked in every line, as a safety net under `mask_recipient`.
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ]{7,}\d(?![\w-])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_recipient(recipient: str) -> str:
    """`447700900123` → `4477*****123`; `someone@example.com` → `s***@example.com`."""
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{recipient[:4]}*****{recipient[-3:]}" if len(recipient) > 7 else "*****"


def mask_url_password(url: str) -> str:
    """`http://user:secret@host/` → `http://user:***@host/`, for showing a URL with credentials."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def _scrub(text: str) -> str:
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: mask_recipient(re.sub(r"\D", "", m.group(0))), text)


def _value(value: object) -> str:
    text = _scrub(str(value))
    if text and not re.search(r'[\s"=]', text):
        return text
    return json.dumps(text)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            fields["exc_info"] = self.formatException(record.exc_info)
        return " ".join(f"{key}={_value(value)}" for key, value in fields.items())
