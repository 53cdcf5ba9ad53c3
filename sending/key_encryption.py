"""API key secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256), keyed by
`API_KEY_ENCRYPTION_KEYS`: the first key encrypts, every key decrypts (MultiFernet), so a key
is rotated by putting a new one first, running `manage.py rotate_api_key_encryption`, then
dropping the old one (docs/coming-from-notify.md: Rotating the encryption key)."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """No configured key decrypts the stored secret (a key was dropped before rotating)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.API_KEY_ENCRYPTION_KEYS))


def secret_encrypt(secret: str) -> str:
    return _current().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    return _secret_decrypt(token, tuple(settings.API_KEY_ENCRYPTION_KEYS))


@lru_cache(maxsize=1024)
def _secret_decrypt(token: str, keys: tuple[str, ...]) -> str:
    # Kept per process: every /v2 request needs its key's secret, and a stored token never
    # changes meaning (rotation writes a new token).
    try:
        return _fernet(keys).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("no key in API_KEY_ENCRYPTION_KEYS decrypts this secret") from None


def secret_reencrypt(token: str) -> str:
    """The same secret encrypted with the first key (a no-op in meaning, a new token)."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("no key in API_KEY_ENCRYPTION_KEYS decrypts this secret") from None
