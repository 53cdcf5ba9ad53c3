"""The /v2 API's authentication: GOV.UK Notify's JSON Web Tokens.

`Authorization: Bearer <JWT>`, HS256, `iss` the service id, `iat` within 30 seconds of our clock
either way, signed with one of the service's API key secrets (kept encrypted). Signatures are
compared in constant time (PyJWT's `hmac.compare_digest`). Neither the token nor a secret is
ever logged.
"""

import logging
import time
import uuid

import jwt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

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
        key = self._signing_key(token, _service_keys(claims["iss"]))
        _check_issued_at(claims)
        if key.revoked_at is not None:
            raise InvalidToken("API key revoked")
        return key.service, key

    @staticmethod
    def _signing_key(token: str, keys: list[ApiKey]) -> ApiKey:
        for key in keys:
            try:
                secret = secret_decrypt(key.secret_encrypted)
            except SecretUnreadable:
                logger.error("API key secret can't be decrypted", extra={"api_key_id": key.id})
                continue
            try:
                jwt.api_jws.decode(token, key=secret, algorithms=[ALGORITHM])
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError:
                raise InvalidToken("not a JWT") from None
            return key
        raise InvalidToken("signature does not match an API key of the service")

    def authenticate_header(self, request):
        return None  # no WWW-Authenticate: refusals are 403, as GOV.UK Notify's


def _service_keys(issuer) -> list[ApiKey]:
    """The keys that can sign for the issuer, newest first (revoked ones too, to say so)."""
    try:
        service_id = uuid.UUID(str(issuer))
    except ValueError:
        raise InvalidToken("unknown issuer") from None
    keys = list(
        ApiKey.objects.filter(service_id=service_id)
        .exclude(secret_encrypted="")
        .select_related("service")
        .order_by("revoked_at", "-created_at")
    )
    if not keys:
        raise InvalidToken("unknown issuer")
    return keys


def _check_issued_at(claims: dict) -> None:
    issued_at = claims.get("iat")
    if issued_at is None:
        raise InvalidToken("no iat (issued at) in the token")
    if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
        raise InvalidToken("iat must be a number of seconds since the epoch")
    now = clock()
    if now - issued_at > IAT_BOUND_SECONDS:
        raise InvalidToken(f"expired (issued more than {IAT_BOUND_SECONDS} seconds ago)")
    if issued_at - now > IAT_BOUND_SECONDS:
        raise InvalidToken(
            f"in the future (issued more than {IAT_BOUND_SECONDS} seconds from now: check the "
            "clock)"
        )


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
