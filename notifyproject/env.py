"""Read configuration from the environment, once, with errors that name the variable."""

import math
import os
import re
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def _bad(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}: expected {expected}, got {value!r}")


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_optional(name: str) -> str | None:
    return _raw(name) or None


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(name, value, "true or false")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(name, value, "a whole number") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _bad(name, value, f"a whole number {bound}")
    return number


def env_float(
    name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None
) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise _bad(name, value, "a number") from None
    # float() takes "nan" and "inf", which every comparison below would let through.
    if not math.isfinite(number) or number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _bad(name, value, f"a number {bound}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if not value:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
    value = _raw(name) or default
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "sqlite"):
        raise _bad(name, value, f"a URL with scheme {' or '.join(schemes)}")
    return value


def env_database(name: str, default: str) -> dict:
    value = _raw(name) or default
    try:
        config = dj_database_url.parse(value)
    except (ValueError, KeyError) as err:
        raise _bad(name, value, "a database URL such as postgres://user@host/db") from err
    if not config.get("ENGINE"):
        raise _bad(name, value, "a database URL with a known scheme")
    return config


def env_credentials(name: str) -> list[tuple[str, str]]:
    """`user:password[,user:password…]`, several pairs for rotation."""
    pairs = []
    for item in env_list(name):
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise _bad(name, item, "user:password pairs separated by commas")
        pairs.append((user, password))
    return pairs


def env_proxy_header(name: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto=https`: the header a TLS proxy sets, and the value that means HTTPS,
    as Django's SECURE_PROXY_SSL_HEADER (`("HTTP_X_FORWARDED_PROTO", "https")`)."""
    value = _raw(name)
    if not value:
        return None
    header, sep, expected = (part.strip() for part in value.partition("="))
    if not sep or not expected or not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise _bad(name, value, "Header-Name=value, e.g. X-Forwarded-Proto=https")
    return "HTTP_" + header.upper().replace("-", "_"), expected


def env_rate(name: str, default: str) -> str:
    value = _raw(name) or default
    count, sep, period = value.partition("/")
    if (
        not sep
        or not count.isdigit()
        or period not in {"s", "sec", "m", "min", "h", "hour", "d", "day"}
    ):
        raise _bad(name, value, "a rate such as 3000/min (periods: sec, min, hour, day)")
    return value


def env_fernet_keys(name: str) -> list[str]:
    """Comma-separated Fernet keys (the first encrypts, all decrypt); the value is never echoed."""
    from cryptography.fernet import Fernet

    keys = env_list(name)
    for place, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: key {place} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return keys
