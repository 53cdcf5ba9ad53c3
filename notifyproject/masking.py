"""What the logs and the console show of a recipient's or a sender's number or address: enough
to recognise it, never the whole of it. One rule for both (the log formatter and every console
page call these functions).

Which values are masked is decided by the field that holds them, never by what a value looks
like: MMG's `reference` is a sequential number and stays whole, while a callback payload's `to`
is masked whatever it holds. The fields are `RECIPIENT_FIELDS`, compared without regard to case,
`_` or `-` (`phone_number`, `phoneNumber`, `MSISDN`), and so are the `name`s of SES's
`{"name": "To", "value": …}` headers. A value found in such a field is masked wherever else it
appears in the same text (an SES `diagnosticCode` that quotes the address)."""

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

RECIPIENT_FIELDS = frozenset(
    {
        # ours, the API's and the callback payloads'
        "to", "recipient", "recipients", "phonenumber", "emailaddress", "email",
        # Firetext and MMG receipts and received texts
        "mobile", "msisdn", "source", "sourcenumber", "usernumber",
        # SES: mail objects and their headers, and the SendEmail request
        "destination", "from", "cc", "bcc", "replyto",
        "toaddresses", "ccaddresses", "bccaddresses", "replytoaddresses", "fromemailaddress",
    }
)  # fmt: skip

# A field written `key=value` (a form body, a log line, a URL's query) or `"key": "value"` (JSON
# that could not be read, perhaps cut short, its quotes maybe escaped inside another JSON string;
# or a Python dict as a library logs it, `'key': 'value'`).
_PAIR = re.compile(
    r"""(?P<key>(?<![\w%-])[A-Za-z][\w-]*|\\?["'][A-Za-z][\w-]*\\?["'])"""
    r"""(?P<sep>(?<!["'])=(?!=)|(?<=["'])\s*:\s*\[?\s*\\?["']?)"""
    r"""(?P<value>[^&\s"'\\,{}\[\]]+)"""
)
# A value shorter than this is not looked for elsewhere in the text (it would match anything).
_ECHO_MIN_LENGTH = 6


def field_is_recipient(name: str) -> bool:
    return name.replace("_", "").replace("-", "").lower() in RECIPIENT_FIELDS


def recipient_mask(recipient: object) -> str:
    """`447700900123` → `4477******23`; `jane@example.com` → `j***@example.com`; six characters
    or fewer are all stars. Masking a mask changes nothing."""
    text = str(recipient)
    if "@" in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if len(text) <= 6:
        return "*" * len(text)
    return f"{text[:4]}{'*' * (len(text) - 6)}{text[-2:]}"


def data_mask(data: object, *, found: set[str] | None = None) -> object:
    """`data` (parsed JSON: dicts, lists, strings…) with every value under a recipient field
    masked; a string that is itself a JSON object (SNS's `Message`) is masked inside. The
    values masked are added to `found`."""
    found = set() if found is None else found
    if isinstance(data, dict):
        if field_is_recipient(str(data.get("name", ""))) and "value" in data:
            return {**data, "value": _masked(data["value"], found)}
        return {
            key: _masked(value, found)
            if field_is_recipient(str(key))
            else data_mask(value, found=found)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [data_mask(item, found=found) for item in data]
    if isinstance(data, str) and data.lstrip().startswith(("{", "[")):
        parsed = _json_or_none(data)
        if parsed is not None:
            return json.dumps(data_mask(parsed, found=found), ensure_ascii=False)
    return data


def text_mask(text: str, *, recipients: Iterable[str] = ()) -> str:
    """`text` (a raw receipt body, a callback payload, a log line or an error) with every
    recipient field's value masked, read as JSON when it is JSON, else as `key=value` /
    `"key": "value"` pairs; then every echo of those values, and of `recipients` (values the
    caller knows are recipients: the notification's own), masked too."""
    found: set[str] = set()
    parsed = _json_or_none(text) if text.lstrip().startswith(("{", "[")) else None
    if parsed is not None:
        masked = json.dumps(data_mask(parsed, found=found), ensure_ascii=False)
    else:
        masked = _PAIR.sub(lambda match: _pair_masked(match, found), text)
    for value in sorted({*found, *recipients}, key=len, reverse=True):
        if len(value) >= _ECHO_MIN_LENGTH:
            masked = masked.replace(value, recipient_mask(value))
    return masked


def _masked(value: object, found: set[str]) -> object:
    """Everything under a recipient field: a value, or each of a list's (SES's `destination`)."""
    if isinstance(value, list):
        return [_masked(item, found) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item, found) for key, item in value.items()}
    if value is None or value == "":
        return value
    found.add(str(value))
    return recipient_mask(value)


def _pair_masked(match: re.Match, found: set[str]) -> str:
    if not field_is_recipient(match["key"].strip("\\\"'")):
        return match.group(0)
    raw = match["value"]
    value = unquote(raw)  # a form's `%2B44…`, `%40`; `+` is kept as written
    found.add(value)
    masked = recipient_mask(value)
    if raw != value:
        masked = quote(masked, safe="*")
    return f"{match['key']}{match['sep']}{masked}"


def _json_or_none(text: str) -> object | None:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
