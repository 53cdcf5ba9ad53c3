"""HTTP basic auth for receipts: any of the CALLBACK_BASIC_AUTH pairs, compared in constant time."""

import base64
import binascii
import hmac

from django.conf import settings


def callback_credentials_valid(authorization: str) -> bool:
    """True when basic auth is off, or `authorization` carries one of the configured pairs."""
    configured = settings.CALLBACK_BASIC_AUTH
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
