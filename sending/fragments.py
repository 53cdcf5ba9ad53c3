"""How many SMS parts a text is sent and billed as (contract section 4, "Text message fragments").

A text made only of the GSM 03.38 default alphabet is sent in 7-bit characters: each character of
the basic set counts once, each of the extension table (reached through an escape) twice; one part
holds 160, a concatenated part 153 (the rest is the concatenation header). Any other character makes
the whole text UCS-2, counted in UTF-16 code units (an emoji outside the Basic Multilingual Plane is
two): one part holds 70, a concatenated part 67.
"""

import math
import re

MAX_SMS_FRAGMENTS = 6

# 0x1B is the escape to the extension table; GOV.UK Notify counts a lone one as one character
# of the default alphabet, and so do we.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"

_GSM_SINGLE, _GSM_CONCATENATED = 160, 153
_UCS2_SINGLE, _UCS2_CONCATENATED = 70, 67
_NOT_GSM = re.compile(f"[^{re.escape(GSM_BASIC + GSM_EXTENSION)}]")


def sms_fragment_count(content: str) -> int:
    """The number of parts `content` is sent as (0 for an empty text)."""
    if _NOT_GSM.search(content) is None:
        length = len(content) + sum(content.count(char) for char in GSM_EXTENSION)
        single, concatenated = _GSM_SINGLE, _GSM_CONCATENATED
    else:
        # A lone surrogate (JSON allows "\ud800") is one code unit too.
        length = len(content.encode("utf-16-le", errors="surrogatepass")) // 2
        single, concatenated = _UCS2_SINGLE, _UCS2_CONCATENATED
    if length <= single:
        return 1 if length else 0
    return math.ceil(length / concatenated)


def sms_too_long_message(fragments: int) -> str:
    """The contract's refusal of a text over MAX_SMS_FRAGMENTS parts (after the field name)."""
    return (
        f"Text messages cannot be longer than {MAX_SMS_FRAGMENTS} parts "
        f"({MAX_SMS_FRAGMENTS * _GSM_CONCATENATED} GSM characters or "
        f"{MAX_SMS_FRAGMENTS * _UCS2_CONCATENATED} others), this one is {fragments} parts"
    )
