"""The /v2 API against a real running server (pytest-django's `live_server`, real HTTP), called
with GOV.UK Notify's official Python client, unchanged."""

import time
from dataclasses import dataclass

import pytest
from django_q.conf import Conf
from notifications_python_client import NotificationsAPIClient

from fakes import Behaviour
from sending.models import ApiKey, ProviderDetails, Service, Template
from sending.templates import template_create
from tests.fakes import running_fake_providers

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class V2:
    url: str
    service: Service
    key: str  # the key string, as create_api_key prints it
    client: NotificationsAPIClient

    def client_for(self, key: str) -> NotificationsAPIClient:
        return NotificationsAPIClient(key, base_url=self.url)


@pytest.fixture
def v2(live_server, transactional_db) -> V2:
    service = Service.objects.create(name="Council tax")
    _, key = ApiKey.issue(service, name="live key")
    return V2(
        url=live_server.url,
        service=service,
        key=key,
        client=NotificationsAPIClient(key, base_url=live_server.url),
    )


@pytest.fixture
def deliver_in_process(monkeypatch):
    """Delivery tasks run in the server's thread as each request commits (django-q's sync mode),
    so a send reaches the fake provider before its answer."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def fake(v2, deliver_in_process, settings, monkeypatch):
    """Fake Firetext, MMG and SES that deliver everything and post the receipts to the server."""
    behaviour = Behaviour(receipt_delay=0.0, outcomes={"delivered": 100.0})
    with running_fake_providers(receipts_to=v2.url, behaviour=behaviour) as fake:
        fake.configure_clients(settings, monkeypatch)
        settings.SNS_VERIFY_SIGNATURES = False  # the fake's SES receipts are unsigned
        ProviderDetails.objects.filter(name="mmg").update(priority=0)
        ProviderDetails.objects.filter(name="firetext").update(priority=100)
        yield fake


@pytest.fixture
def sms_template(v2) -> Template:
    return template_create(
        service=v2.service,
        template_type="sms",
        name="Code",
        body="Hello ((First Name)), your code is ((code)).",
    )


@pytest.fixture
def email_template(v2) -> Template:
    return template_create(
        service=v2.service,
        template_type="email",
        name="Bill",
        subject="Your bill for ((month))",
        body="Dear ((name)),\n\nYou owe ((amount)).\n\nThe council",
    )


def poll(check, *, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
