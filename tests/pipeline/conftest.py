import random

import pytest
import responses

from sending import failover
from sending.models import Notification, ProviderDetails
from sending.services import notification_create
from tests.fakes import (  # noqa: F401  (fixtures: the fake providers over real HTTP, moto)
    _moto_server,
    fake_clients,
    fake_providers,
    moto_ses,
    ses_answers,
)

FIRETEXT_URL = "https://firetext.test/api/sendsms/json"
MMG_URL = "https://mmg.test/jsonv2a/api.php"
FIRETEXT_OK = {"data": [], "description": "SMS successfully queued", "code": 0, "responseData": 1}


@pytest.fixture(autouse=True)
def provider_settings(settings):
    settings.FIRETEXT_URL = FIRETEXT_URL
    settings.MMG_URL = MMG_URL
    settings.FIRETEXT_API_KEY = "firetext-key"
    settings.MMG_API_KEY = "mmg-key"
    yield settings


@pytest.fixture(autouse=True)
def seeded_choice(monkeypatch):
    monkeypatch.setattr(failover, "rng", random.Random(7))


@pytest.fixture
def wire():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def prefer(provider: str) -> None:
    """Send every first attempt to `provider` (the other stays active at priority 0)."""
    ProviderDetails.objects.filter(notification_type="sms").update(priority=0)
    ProviderDetails.objects.filter(name=provider).update(priority=100)


@pytest.fixture
def sms(service) -> Notification:
    return notification_create(
        service=service,
        notification_type="sms",
        recipient="447700900123",
        content="Your code is 1234",
    )


@pytest.fixture
def email(service) -> Notification:
    return notification_create(
        service=service,
        notification_type="email",
        recipient="someone@example.com",
        subject="Hello",
        content="Body",
    )


def worker_hold(started: str, release: str) -> None:
    """A task that keeps its worker busy until `release` exists (at most 50 s, below the task
    timeout), as a long delivery drain does; `started` says it has begun."""
    import time
    from pathlib import Path

    Path(started).touch()
    deadline = time.monotonic() + 50
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
