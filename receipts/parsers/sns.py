"""Amazon SNS over HTTP(S): message signatures and subscription confirmation.

The signature check follows AWS's "Verifying the signatures of Amazon SNS messages": a
canonical string of chosen fields, signed with SHA1withRSA (SignatureVersion 1) or
SHA256withRSA (2) by the key in the certificate at SigningCertURL, which must be an SNS host.
"""

import base64
import binascii
import functools
import re
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

# sns.eu-west-1.amazonaws.com, and the China partition's sns.cn-north-1.amazonaws.com.cn
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

_SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
# The fields each message type signs, in the order they are signed ("Subject" only when present).
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_KEYS,
    "UnsubscribeConfirmation": _CONFIRMATION_KEYS,
}
_OPTIONAL_KEYS = {"Subject"}


class SnsSignatureInvalid(Exception):
    """The message is not provably from SNS; the text says why."""


def sns_url_is_aws(url: str) -> bool:
    """An https URL on an SNS host (no port, no user), the only place we fetch from."""
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.hostname is not None
        and _SNS_HOST.match(parts.hostname) is not None
        and parts.port is None
        and parts.username is None
    )


def sns_canonical_string(message: dict) -> bytes:
    keys = SIGNED_KEYS[message["Type"]]
    missing = [k for k in keys if k not in _OPTIONAL_KEYS and not isinstance(message.get(k), str)]
    if missing:
        raise SnsSignatureInvalid(f"signed fields missing: {', '.join(missing)}")
    return "".join(
        f"{key}\n{message[key]}\n" for key in keys if isinstance(message.get(key), str)
    ).encode()


def sns_message_verify(message: dict) -> None:
    """Raise SnsSignatureInvalid unless SNS signed `message` (a parsed SNS JSON body)."""
    algorithm = _SIGNATURE_HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SnsSignatureInvalid(
            f"SignatureVersion {message.get('SignatureVersion')!r} not supported"
        )
    url = message.get("SigningCertURL")
    if not isinstance(url, str) or not sns_url_is_aws(url) or not url.endswith(".pem"):
        raise SnsSignatureInvalid(f"SigningCertURL {url!r} is not an SNS certificate")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except binascii.Error:
        raise SnsSignatureInvalid("Signature is not base64") from None
    canonical = sns_canonical_string(message)
    try:
        sns_public_key(url).verify(signature, canonical, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SnsSignatureInvalid("signature does not match") from None


@functools.lru_cache(maxsize=32)
def sns_public_key(url: str) -> rsa.RSAPublicKey:
    """The signing key of the certificate at `url`, fetched once per process (AWS rotates
    certificates by publishing a new URL, so a cached URL never changes meaning)."""
    try:
        key = x509.load_pem_x509_certificate(sns_certificate_fetch(url)).public_key()
    except ValueError:
        raise SnsSignatureInvalid(f"SigningCertURL {url!r} is not a PEM certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsSignatureInvalid("the signing certificate's key is not RSA")
    return key


def sns_certificate_fetch(url: str) -> bytes:
    """Network errors propagate: the receipt is kept as failed and can be replayed."""
    response = requests.get(url, timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.content


def sns_subscription_confirm(url: str) -> None:
    """Visit a SubscriptionConfirmation's SubscribeURL, which confirms the subscription."""
    response = requests.get(url, timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    response.raise_for_status()
