"""What a text from outside may hold: the one home of these rules, for both APIs, the /v2
personalisation, the callback settings and the receipts (contract section 4).

- Nowhere a NUL or a lone surrogate (half a UTF-16 pair): JSON can escape either (`"\\u0000"`,
  `"\\ud800"`), but PostgreSQL text can't hold a NUL (`DataError`) and no database driver can
  encode a lone surrogate as UTF-8 (`UnicodeEncodeError`, not a `DatabaseError`).
- In a value that ends up in a header or on one line (an email subject, a reference, a token, a
  URL), no line break or other control character either: a CR/LF there would start a header of
  the sender's choosing.
"""

import re

# Half a UTF-16 pair or NUL.
UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text_fault(value: str, *, one_line: bool = False) -> str | None:
    """Why `value` can't be taken, as the rest of a message naming its field ("must not
    contain …"); None when it can."""
    found = UNSTORABLE.search(value)
    if found is None and one_line:
        found = CONTROL.search(value)
    if found is None:
        return None
    character = found.group()
    if character == "\x00":
        return "must not contain a NUL character"
    code = f"U+{ord(character):04X}"
    if "\ud800" <= character <= "\udfff":
        return f"must not contain a lone surrogate ({code})"
    return f"must not contain a line break or other control character ({code})"
