"""`sms_sanitise`: the text GOV.UK Notify would send for a /v2 text, and the parts it is
billed as once sanitised (contract section 11)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sending.fragments import sms_fragment_count
from sending.sanitise import SMS_ALLOWED, WELSH_DIACRITICS, sms_sanitise

# Welsh letters that are not in the GSM alphabet: the only ones that make a text UCS-2.
WELSH_UCS2 = set("ẁỳÀÈÌÒÙẀỲáíóúẃýÁÍÓÚẂÝëïẅÿËÏẄŸâêîôûŵŷÂÊÎÔÛŴŶ")

CASES = [
    # (what the service's text is, what Notify sends, its parts)
    ("Your code is 123456", "Your code is 123456", 1),
    # A curly apostrophe alone made this 3 UCS-2 parts; it becomes ' and stays 1 part.
    ("a" * 159 + "’", "a" * 159 + "'", 1),
    ("‘single’ “double” ‚low‛ „low“", '\'single\' "double" \'low? "low"', 1),
    ("Pay by 1–3 May — not −5 or co‑op", "Pay by 1-3 May - not -5 or co-op", 1),
    ("Wait…", "Wait...", 1),
    ("a\tb\u00a0c\u202fd", "a b c d", 1),
    # Zero-width characters and line or paragraph separators are removed.
    ("gov\u200b.uk\u200c\u200d\u2060\ufeff\u180e", "gov.uk", 1),
    ("one\u2028two\u2029three", "onetwothree", 1),
    # GSM letters with accents are kept; other accented letters lose their accent.
    ("éèÉÄÖÑÜäöñüàùìòÇØøÅåÆæß", "éèÉÄÖÑÜäöñüàùìòÇØøÅåÆæß", 1),
    ("ç ã ę ő ś ž Ř ą", "c a e o s z R a", 1),
    ("Ionuț Dvořák", "Ionut Dvorák", 1),  # á is Welsh: kept
    ("ǘ", "ü", 1),  # decomposes to ü and an accent: ü is GSM
    # The Polish L has no decomposition: a table says L.
    ("Łukasz Michał", "Lukasz Michal", 1),
    # Welsh letters are kept; ŵ and its kin are not GSM, so the text stays UCS-2.
    ("Croeso i’r ŵyl", "Croeso i'r ŵyl", 1),
    ("ŵ" + "a" * 69, "ŵ" + "a" * 69, 1),
    ("ŵ" + "a" * 70, "ŵ" + "a" * 70, 2),
    # A Welsh letter that is in GSM (à, é, ü) does not.
    ("à" + "a" * 159, "à" + "a" * 159, 1),
    # Łódź: Ł by the table, ó kept (Welsh), ź loses its accent: ó makes it UCS-2.
    ("Łódź" + "a" * 67, "Lódz" + "a" * 67, 2),
    # Anything else becomes ?: emoji, other scripts, compatibility forms, a form feed.
    ("Thanks 👍", "Thanks ?", 1),
    ("😀" * 36, "?" * 36, 1),  # was 2 UCS-2 parts
    ("Привет", "??????", 1),
    ("ﬁne ＡＢ ½ ™", "?ne ?? ? ?", 1),
    ("page\fbreak", "page?break", 1),
    # The extension table is kept and counts twice.
    ("{[~]}" * 16, "{[~]}" * 16, 1),
    ("{[~]}" * 16 + "a", "{[~]}" * 16 + "a", 2),
    ("€5 ^ | \\", "€5 ^ | \\", 1),
    # Notify keeps the GSM escape and counts it once.
    ("a\x1bb", "a\x1bb", 1),
    ("", "", 0),
]


@pytest.mark.parametrize(("text", "sent", "parts"), CASES)
def test_what_notify_would_send_and_its_parts(text, sent, parts):
    assert sms_sanitise(text) == sent
    assert sms_fragment_count(sms_sanitise(text)) == parts


@given(st.text())
def test_a_sanitised_text_holds_only_gsm_and_welsh_and_sanitising_it_again_changes_nothing(text):
    sent = sms_sanitise(text)
    assert set(sent) <= SMS_ALLOWED
    assert sms_sanitise(sent) == sent


@given(st.text(alphabet=sorted(SMS_ALLOWED)))
def test_gsm_and_welsh_are_sent_as_given(text):
    assert sms_sanitise(text) == text


@given(st.text(min_size=71, max_size=153))
def test_a_text_is_ucs2_only_when_a_welsh_letter_outside_gsm_remains(text):
    """Over 70 and at most 153 characters once sanitised: 2 or more parts as UCS-2; as GSM,
    1 part up to 160 septets (extension characters count two), else 2."""
    sent = sms_sanitise(text.replace("…", ""))  # the ellipsis alone lengthens a text
    if len(sent) <= 70:
        return
    septets = len(sent) + sum(sent.count(char) for char in "^{}\\[~]|€")
    if set(sent) & WELSH_UCS2:
        assert sms_fragment_count(sent) >= 2
    else:
        assert sms_fragment_count(sent) == (1 if septets <= 160 else 2)


def test_the_welsh_letters_outside_gsm_are_those_named():
    assert set(WELSH_DIACRITICS) - set(sms_sanitise(WELSH_DIACRITICS)) == set()
    assert {c for c in WELSH_DIACRITICS if sms_fragment_count(c * 71) == 2} == WELSH_UCS2
