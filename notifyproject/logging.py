"""One line per event, `key=value` pairs, and never a full phone number or email address: each
value goes through the masking rule the console uses too (`notifyproject.masking`)."""

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from notifyproject.masking import data_mask, field_is_recipient, text_mask

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_url_password(url: str) -> str:
    """`http://user:secret@host/` → `http://user:***@host/`, for showing a URL with credentials."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def _value(key: str, value: object) -> str:
    """A field's value as written: masked by the rule in `notifyproject.masking` (the field a
    value is under decides), quoted when it holds spaces, quotes or `=`."""
    if field_is_recipient(key) or isinstance(value, dict | list):
        text = str(data_mask({key: value})[key])
    else:
        text = text_mask(str(value))
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
        return " ".join(f"{key}={_value(key, value)}" for key, value in fields.items())
