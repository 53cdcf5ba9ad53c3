"""GOV.UK Notify's text sanitising (notifications-utils `SanitiseSMS`), for texts sent through
the /v2 API (contract section 11): a service moving from Notify sends, and is billed for, the
same text as before.

A character of the GSM 03.38 alphabet or its extension table, or a Welsh letter with a
diacritic, is kept. Any other character with a close GSM equivalent becomes it: a letter with
a canonical Unicode decomposition whose first character is kept becomes that character (é is
kept, but ę becomes e, ǘ becomes ü), and a fixed table covers dashes, quotes, the ellipsis,
spaces and the Polish L. Anything else becomes `?`, so the only characters that can make a
sanitised text UCS-2 are the Welsh letters outside GSM (ŵ, ŷ, â and the like).
"""

import functools
import re
import unicodedata

from sending.fragments import GSM_BASIC, GSM_EXTENSION

WELSH_DIACRITICS = (
    "àèìòùẁỳÀÈÌÒÙẀỲ"  # grave
    "áéíóúẃýÁÉÍÓÚẂÝ"  # acute
    "äëïöüẅÿÄËÏÖÜẄŸ"  # diaeresis
    "âêîôûŵŷÂÊÎÔÛŴŶ"  # circumflex
)

# Notify keeps the extension table but not its form feed (a page break means nothing on a phone).
SMS_ALLOWED = frozenset(GSM_BASIC + GSM_EXTENSION.replace("\f", "") + WELSH_DIACRITICS)

# Characters with no canonical decomposition that still have a close GSM equivalent.
SMS_REPLACEMENTS = {
    "\u2011": "-",  # non-breaking hyphen
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # horizontal ellipsis
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201a": "'",  # single low-9 quotation mark
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u180e": "",  # Mongolian vowel separator
    "\u200b": "",  # zero-width space (used to stop "gov.uk" becoming a link)
    "\u200c": "",  # zero-width non-joiner
    "\u200d": "",  # zero-width joiner
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero-width no-break space (byte order mark)
    "\u2028": "",  # line separator
    "\u2029": "",  # paragraph separator
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space
    "\t": " ",
    "\u0141": "L",  # Ł
    "\u0142": "l",  # ł
}

UNKNOWN = "?"

_NOT_ALLOWED = re.compile(f"[^{re.escape(''.join(sorted(SMS_ALLOWED)))}]")


def sms_sanitise(text: str) -> str:
    """`text` as GOV.UK Notify would send it: every character kept, replaced or `?`."""
    if _NOT_ALLOWED.search(text) is None:
        return text
    return _NOT_ALLOWED.sub(lambda match: _character_replacement(match.group()), text)


@functools.lru_cache(maxsize=4096)
def _character_replacement(char: str) -> str:
    """What a character outside SMS_ALLOWED becomes. As Notify does: a canonical decomposition
    (one without a `<tag>`) decides alone, by its first character; only a character without
    one is looked up in the table."""
    decomposition = unicodedata.decomposition(char)
    if decomposition and not decomposition.startswith("<"):
        first = chr(int(decomposition.split()[0], 16))
        return first if first in SMS_ALLOWED else UNKNOWN
    return SMS_REPLACEMENTS.get(char, UNKNOWN)
