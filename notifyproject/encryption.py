"""Secrets we must use again later (a service's callback bearer token and signing secret), kept
encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from `SECRET_KEY`.

Keys listed in Django's `SECRET_KEY_FALLBACKS` still decrypt, so `SECRET_KEY` can be rotated
(a value is written again under the current key whenever it is next changed).
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_PURPOSE = b"notify: secrets stored at rest"


class SecretUnreadable(Exception):
    """A stored secret that no current or fallback key decrypts."""


def _fernet_for(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@functools.cache
def _keys(secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet_for(key) for key in (secret_key, *fallbacks)])


def _current() -> MultiFernet:
    return _keys(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def secret_encrypt(plain: str) -> str:
    return _current().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret does not decrypt with SECRET_KEY") from None
