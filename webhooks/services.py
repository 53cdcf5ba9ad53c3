"""Setting, rolling and removing a service's callbacks (the API and the admin both call these):
its status callback (`ServiceCallback`, the default) or its inbound one (`ServiceInboundCallback`),
each with its own URL, token and signing secret."""

import base64
import secrets

from django.db import transaction
from django.utils import timezone

from notifyproject.encryption import secret_encrypt
from sending.models import Service
from webhooks.guard import callback_url_check
from webhooks.models import CallbackEndpoint, ServiceCallback

BEARER_TOKEN_MIN_LENGTH = 10
BEARER_TOKEN_MAX_LENGTH = 1000
BEARER_TOKEN_RULE = (
    f"must be {BEARER_TOKEN_MIN_LENGTH} to {BEARER_TOKEN_MAX_LENGTH:,} printable ASCII "
    "characters (no spaces or control characters)"
)


class BearerTokenRefused(ValueError):
    """A bearer token that can't go in an `Authorization` header as it is."""


def bearer_token_check(token: str) -> None:
    """Contract section 10: refused when set, never accepted and then failed at send time (a
    line break in a header makes the HTTP library refuse every attempt)."""
    printable = token.isascii() and token.isprintable() and " " not in token
    if not printable or not BEARER_TOKEN_MIN_LENGTH <= len(token) <= BEARER_TOKEN_MAX_LENGTH:
        raise BearerTokenRefused(BEARER_TOKEN_RULE)


def signing_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def service_callback_set(
    *,
    service: Service,
    url: str,
    bearer_token: str,
    model: type[CallbackEndpoint] = ServiceCallback,
) -> tuple[CallbackEndpoint, str | None]:
    """Create or change the service's callback; the URL must pass the SSRF guard
    (`CallbackUrlRefused` otherwise), and the token `bearer_token_check` (the API and the admin
    check it with the rest of their input). Returns it and, only when it was created, its new
    signing secret (shown once: it is kept encrypted and never shown again)."""
    callback_url_check(url)
    with transaction.atomic():
        callback = model.objects.select_for_update().filter(service=service).first()
        new_secret = None
        if callback is None:
            new_secret = signing_secret_new()
            callback = model(service=service, signing_secret_encrypted=secret_encrypt(new_secret))
        callback.url = url
        callback.bearer_token = bearer_token
        callback.save()
    return callback, new_secret


def service_callback_roll_secret(*, callback: CallbackEndpoint) -> str:
    """A new signing secret; the current one goes on signing beside it (both signatures are
    sent) until `service_callback_end_roll`. Returns the new secret, shown once."""
    new_secret = signing_secret_new()
    with transaction.atomic():
        locked = type(callback).objects.select_for_update().get(pk=callback.pk)
        locked.previous_signing_secret_encrypted = locked.signing_secret_encrypted
        locked.signing_secret_encrypted = secret_encrypt(new_secret)
        locked.secret_rolled_at = timezone.now()
        locked.save()
    return new_secret


def service_callback_end_roll(*, callback: CallbackEndpoint) -> None:
    """Stop signing with the previous secret (the service has moved to the new one)."""
    type(callback).objects.filter(pk=callback.pk).update(
        previous_signing_secret_encrypted="", updated_at=timezone.now()
    )


def service_callback_delete(
    *, service: Service, model: type[CallbackEndpoint] = ServiceCallback
) -> bool:
    return model.objects.filter(service=service).delete()[0] > 0
