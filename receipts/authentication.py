"""HTTP basic auth for receipts: each SMS provider's own pairs (`<NAME>_RECEIPT_AUTH`:
`FIRETEXT_RECEIPT_AUTH`, `MMG_RECEIPT_AUTH`), else the shared `CALLBACK_BASIC_AUTH`, compared in
constant time."""

import base64
import binascii
import hmac

from django.conf import settings

from sending.providers import SMS_PROVIDERS

# The providers given credentials of their own, and the setting that holds them. SES has none:
# its receipts come through SNS, signed, from the topics allowed (`SES_SNS_TOPIC_ARNS`).
RECEIPT_AUTH_SETTINGS = {p.name: f"{p.settings_prefix}_RECEIPT_AUTH" for p in SMS_PROVIDERS}


def receipt_credentials(provider: str) -> list[tuple[str, str]]:
    """The pairs `provider`'s receipt endpoints accept (none: basic auth is off for them).
    Its own when set, so credentials given to one provider can't post as another."""
    own = RECEIPT_AUTH_SETTINGS.get(provider)
    return (own and getattr(settings, own)) or settings.CALLBACK_BASIC_AUTH


def callback_credentials_valid(authorization: str, *, provider: str) -> bool:
    """True when basic auth is off for `provider`, or `authorization` carries one of its pairs."""
    configured = receipt_credentials(provider)
    if not configured:
        return True
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except binascii.Error:
        return False
    if not sep:
        return False
    matched = False
    # Every pair is compared, so the time taken says nothing about which part was wrong.
    for expected_user, expected_password in configured:
        user_ok = hmac.compare_digest(user, expected_user.encode())
        password_ok = hmac.compare_digest(password, expected_password.encode())
        matched |= user_ok & password_ok
    return matched
