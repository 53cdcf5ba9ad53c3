"""The /v2 API's authentication: GOV.UK Notify's JSON Web Tokens.

`Authorization: Bearer <JWT>`, HS256, `iss` the service id, `iat` within 30 seconds of our clock
either way (and `exp`, when given, honoured), signed with one of the service's API key secrets
(kept encrypted). Signatures are compared in constant time (PyJWT's `hmac.compare_digest`).
Neither the token nor a secret is ever logged.
"""

import functools
import logging
import math
import time
import uuid

import jwt
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from sending.api_keys import ENTRY_SECONDS, api_key_find_by_hash, api_key_mark_used
from sending.api_v2.errors import InvalidToken
from sending.key_encryption import SecretUnreadable, secret_decrypt
from sending.models import ApiKey

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
IAT_BOUND_SECONDS = 30
clock = time.time  # seam for tests

# Signature only: the claims are checked here, against `clock`.
_SIGNATURE_ONLY = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


class JwtAuthentication(BaseAuthentication):
    def authenticate(self, request):
        try:
            return self._authenticate(request.META.get("HTTP_AUTHORIZATION", ""))
        except InvalidToken as err:
            logger.info("v2 token refused", extra={"reason": err.why, "path": request.path})
            raise

    def _authenticate(self, header: str):
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("no token (send 'Authorization: Bearer <JWT>')")
        try:
            unverified = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise InvalidToken("not a JWT") from None
        claims = unverified["payload"]
        if unverified["header"].get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm must be {ALGORITHM}")
        if "iss" not in claims:
            raise InvalidToken("no iss (the service id) in the token")
        service_id = _service_id(claims["iss"])
        key_hash = _signing_key_hash(token, signing_keys_of(service_id=service_id))
        if key_hash is None:  # perhaps a key made since the list was cached: ask the database
            key_hash = _signing_key_hash(token, signing_keys_of(service_id=service_id, fresh=True))
        if key_hash is None:
            raise InvalidToken("signature does not match an API key of the service")
        _check_issued_at(claims)
        # Through the key cache, which revocation writes over at once (sending/api_keys.py).
        key = api_key_find_by_hash(key_hash=key_hash)
        if key is None or key.service_id != service_id:
            raise InvalidToken("signature does not match an API key of the service")
        if key.revoked_at is not None:
            raise InvalidToken("API key revoked")
        api_key_mark_used(key=key)
        return key.service, key

    def authenticate_header(self, request):
        return None  # no WWW-Authenticate: refusals are 403, as GOV.UK Notify's


def _service_id(issuer) -> uuid.UUID:
    try:
        return uuid.UUID(str(issuer))
    except ValueError:
        raise InvalidToken("unknown issuer") from None


def _signing_key_hash(token: str, keys: list[tuple[str, str]]) -> str | None:
    """The hash of the key whose secret signed the token, of (key hash, encrypted secret)s."""
    for key_hash, secret_encrypted in keys:
        try:
            secret = _secret_of(secret_encrypted)
        except SecretUnreadable:
            logger.error("API key secret can't be decrypted", extra={"key_prefix": key_hash[:8]})
            continue
        try:
            jwt.api_jws.decode(token, key=secret, algorithms=[ALGORITHM])
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError:
            raise InvalidToken("not a JWT") from None
        return key_hash
    return None


@functools.lru_cache(maxsize=1024)
def _secret_of(secret_encrypted: str) -> str:
    """Decrypting costs more than the rest of the check; a ciphertext always means one secret
    (a new encryption key gives a new ciphertext), so each process decrypts it once."""
    return secret_decrypt(secret_encrypted)


def signing_keys_of(*, service_id: uuid.UUID, fresh: bool = False) -> list[tuple[str, str]]:
    """(key hash, encrypted secret) of each key that can sign for the service, newest first,
    revoked ones too (so a token signed with one is refused as revoked, by name). Kept in the
    shared cache for ENTRY_SECONDS and dropped when a key is saved or deleted: a list missing a
    new key is read again (`fresh`), and revocation is checked through the key cache."""
    entry = _signing_keys_entry(service_id)
    keys = None if fresh else cache.get(entry)
    if keys is None:
        keys = [
            tuple(row)
            for row in ApiKey.objects.filter(service_id=service_id)
            .exclude(secret_encrypted="")
            .order_by("revoked_at", "-created_at")
            .values_list("key_hash", "secret_encrypted")
        ]
        cache.set(entry, keys, timeout=ENTRY_SECONDS)
    if not keys:
        raise InvalidToken("unknown issuer")
    return keys


def _signing_keys_entry(service_id) -> str:
    return f"api-signing-keys:{service_id}"


@receiver([post_save, post_delete], sender=ApiKey)
def _signing_keys_changed(sender, instance: ApiKey, **kwargs) -> None:
    entry = _signing_keys_entry(instance.service_id)
    transaction.on_commit(lambda: cache.delete(entry))


def _check_issued_at(claims: dict) -> None:
    """`iat` within IAT_BOUND_SECONDS of our clock either way, and `exp`, when the token has
    one, not passed by more than that bound (GOV.UK Notify's PyJWT leeway). Both must be finite
    numbers: JSON as Python reads it allows `NaN`, which no comparison would ever refuse."""
    issued_at = claims.get("iat")
    if issued_at is None:
        raise InvalidToken("no iat (issued at) in the token")
    if not _finite_number(issued_at):
        raise InvalidToken("iat must be a number of seconds since the epoch")
    now = clock()
    if now - issued_at > IAT_BOUND_SECONDS:
        raise InvalidToken(f"expired (issued more than {IAT_BOUND_SECONDS} seconds ago)")
    if issued_at - now > IAT_BOUND_SECONDS:
        raise InvalidToken(
            f"in the future (issued more than {IAT_BOUND_SECONDS} seconds from now: check the "
            "clock)"
        )
    if "exp" not in claims:
        return
    if not _finite_number(claims["exp"]):
        raise InvalidToken("exp must be a number of seconds since the epoch")
    if now - claims["exp"] >= IAT_BOUND_SECONDS:
        raise InvalidToken("expired (its exp has passed)")


def _finite_number(value) -> bool:
    """A number our clock can be compared with (a float, or an int a float can hold)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


class JwtAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = JwtAuthentication
    name = "notifyJwt"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "HS256, iss = service id, iat within 30 s, signed with the key's secret",
        }
