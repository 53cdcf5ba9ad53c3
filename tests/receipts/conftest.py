"""Posting raw receipts, signing SNS messages with a local key, and catching metrics."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.test import Client

from receipts.inbox import receipts_drain, receipts_waiting
from receipts.parsers import sns
from tests.conftest import FIXTURES

# The notification id the Firetext and MMG fixture files name, and the SES message id.
REFERENCE = uuid.UUID("5a2c6b0e-8d3f-4f7a-9c1e-3b6d2e4f8a10")
SES_MESSAGE_ID = "0102018c2c1a7f2e-5a3b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-000000"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"

FIRETEXT = ("/notifications/sms/firetext", "application/x-www-form-urlencoded")
MMG = ("/notifications/sms/mmg", "application/json")
SES = ("/notifications/email/ses", "text/plain; charset=UTF-8")


def fixture_text(provider: str, name: str) -> str:
    return (FIXTURES / f"{provider}_receipts" / name).read_text()


def post(
    endpoint: tuple[str, str],
    body: str | bytes,
    content_type: str | None = None,
    *,
    drain: bool = True,
    **extra,
):
    """The provider's post and our answer; then, unless `drain=False`, the inbox drain a worker
    runs once the receipt is committed (tests hold the transaction open, so it is run here)."""
    path, default_type = endpoint
    response = Client().generic(
        "POST",
        path,
        body,
        content_type=default_type if content_type is None else content_type,
        **extra,
    )
    if drain:
        inbox_drain()
    return response


def inbox_drain():
    """What the drain's worker does: apply every receipt waiting."""
    return receipts_drain(receipts=receipts_waiting())


def ses_notification(name: str, **changes) -> dict:
    """An SES notification from the fixture files, with the shared `mail` object put in."""
    notification = json.loads(fixture_text("ses", name))
    notification["mail"] = json.loads(fixture_text("ses", "mail.json"))
    notification.update(changes)
    return notification


def sns_envelope(ses: dict | None = None, *, name: str = "sns_notification.json", **changes):
    envelope = json.loads(fixture_text("ses", name))
    if ses is not None:
        envelope["Message"] = json.dumps(ses)
    envelope.update(changes)
    return envelope


def canonical(message: dict) -> bytes:
    """Written from AWS's "Verifying the signatures of Amazon SNS messages", independently of
    the code under test."""
    if message["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()


class SnsSigner:
    def __init__(self, key, fetched: list[str]):
        self.key = key
        self.fetched = fetched

    def sign(self, message: dict, version: str = "1") -> dict:
        signed = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical(signed), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed


@pytest.fixture(scope="session")
def sns_key_and_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def sns_signer(monkeypatch, settings, sns_key_and_certificate) -> SnsSigner:
    """Signatures checked for real; only the certificate download is replaced."""
    key, pem = sns_key_and_certificate
    settings.SNS_VERIFY_SIGNATURES = True
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    monkeypatch.setattr(sns, "sns_certificate_fetch", fetch)
    sns.sns_public_key.cache_clear()
    yield SnsSigner(key, fetched)
    sns.sns_public_key.cache_clear()


@pytest.fixture(autouse=True)
def receipt_settings(settings):
    settings.CALLBACK_BASIC_AUTH = []
    settings.FIRETEXT_RECEIPT_AUTH = []
    settings.MMG_RECEIPT_AUTH = []
    settings.SES_SNS_TOPIC_ARNS = []
    settings.SNS_VERIFY_SIGNATURES = False
