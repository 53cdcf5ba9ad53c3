"""Fake Firetext, MMG and SES for any test: a real HTTP server on 127.0.0.1, started per test.

Use in a conftest (or a test module):

    from tests.fakes import fake_clients, fake_providers  # noqa: F401

`fake_providers` yields a `FakeProviders` handle (receipts off):
    .url                          http://127.0.0.1:<port>
    .requests(provider=None)      every send it received (dicts: provider, fields, to, reference,
                                  provider_reference, fault, status, outcome, time)
    .control(**changes)           e.g. .control(provider="mmg", down=True) or .control(error_rate=1)
    .reset()                      forget requests, undo control changes
    .receipts()                   receipts it posted back (when started with receipts_to)
    .receive(**text)              someone texts a number: {"provider", "source", "destination",
                                  "message"}; the provider posts it to receipts_to
    .configure_clients(settings, monkeypatch)
                                  point FIRETEXT_URL, MMG_URL and boto3's SES endpoint (plus dummy
                                  AWS credentials and API keys) at it

`fake_clients` is `fake_providers` with `configure_clients` already done (for the test's
`settings`). The clients are made again whenever a setting they read changes: nothing to clear.

For receipts, another outcome mix or faults from the start, use the context manager:

    with running_fake_providers(receipts_to=live_server.url, behaviour=Behaviour(receipt_delay=0)):
        ...

Two more stand-ins for SES, for what the fake doesn't do:
    moto_ses        moto in server mode (a real HTTP endpoint, botocore's real error answers:
                    `MessageRejected` from an unverified sender, `InvalidParameterValue` from a
                    recipient without a domain), empty, with boto3 pointed at it; its URL
    ses_answers     `ses_answers("send-email-throttled.json")`: the email client's next calls are
                    answered from a file of tests/fixtures/ses/ by a botocore `before-send`
                    handler, which botocore's own parser reads (a throttling answer, which neither
                    moto nor the fake gives); the handler comes off at the end of the test
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests
from botocore.awsrequest import AWSResponse

from fakes import Behaviour, FakeProviderServer
from sending.clients import email_client
from tests.conftest import FIXTURES

FIRETEXT_API_KEY = "test-firetext-key"
FIRETEXT_INTERNATIONAL_API_KEY = "test-firetext-international-key"
MMG_API_KEY = "dGVzdDptbWc="


class FakeProviders:
    def __init__(self, server: FakeProviderServer):
        self.server = server
        self.url = server.url
        self._http = requests.Session()

    def requests(self, provider: str | None = None) -> list[dict]:
        params = {"provider": provider} if provider else None
        response = self._http.get(f"{self.url}/_requests", params=params, timeout=5)
        response.raise_for_status()
        return response.json()["requests"]

    def control(self, **changes) -> dict:
        response = self._http.post(f"{self.url}/_control", json=changes, timeout=5)
        if response.status_code != 200:
            raise ValueError(response.json()["error"])
        return response.json()

    def reset(self) -> None:
        self._http.post(f"{self.url}/_reset", timeout=5).raise_for_status()

    def receive(self, **text) -> dict:
        response = self._http.post(f"{self.url}/_control/inbound", json=text, timeout=5)
        if response.status_code != 200:
            raise ValueError(response.json()["error"])
        return response.json()

    def receipts(self) -> list[dict]:
        return self._http.get(f"{self.url}/_receipts", timeout=5).json()["posted"]

    def configure_clients(self, settings, monkeypatch) -> None:
        settings.FIRETEXT_URL = f"{self.url}/firetext"
        settings.MMG_URL = f"{self.url}/mmg"
        settings.FIRETEXT_API_KEY = FIRETEXT_API_KEY
        settings.FIRETEXT_INTERNATIONAL_API_KEY = FIRETEXT_INTERNATIONAL_API_KEY
        settings.MMG_API_KEY = MMG_API_KEY
        _aws_test_environment(monkeypatch, self.url)

    def close(self) -> None:
        self._http.close()


@contextmanager
def running_fake_providers(**options) -> Iterator[FakeProviders]:
    """A fake provider server for the block; options as `FakeProviderServer` takes them."""
    options.setdefault("hang_seconds", 30.0)  # stop() wakes a hanging request at once
    options.setdefault("seed", 20261128)
    options.setdefault("behaviour", Behaviour(receipt_delay=0.0))
    server = FakeProviderServer(host="127.0.0.1", port=0, **options).start()
    handle = FakeProviders(server)
    try:
        yield handle
    finally:
        handle.close()
        server.stop()


@pytest.fixture
def fake_providers() -> Iterator[FakeProviders]:
    with running_fake_providers(receipts_to=None) as fake:
        yield fake


@pytest.fixture
def fake_clients(fake_providers, settings, monkeypatch) -> Iterator[FakeProviders]:
    fake_providers.configure_clients(settings, monkeypatch)
    yield fake_providers


def _aws_test_environment(monkeypatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def _moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # heavy: only for the tests that use it

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_ses(_moto_server, monkeypatch) -> str:
    # moto keeps its state per process, not per server: start from nothing.
    requests.post(f"{_moto_server}/moto-api/reset", timeout=5).raise_for_status()
    _aws_test_environment(monkeypatch, _moto_server)
    return _moto_server


def _canned(fixture: str) -> Callable[..., AWSResponse]:
    """A before-send handler answering from a fixture file instead of making the HTTP call."""
    answer = json.loads((FIXTURES / "ses" / fixture).read_text())

    class Body:
        def stream(self, **kwargs):
            yield json.dumps(answer["body"]).encode()

    def handler(request, **kwargs):
        headers = {"Content-Type": "application/x-amz-json-1.1", **answer["headers"]}
        return AWSResponse(request.url, answer["status"], headers, Body())

    return handler


@pytest.fixture
def ses_answers() -> Iterator[Callable[[str], None]]:
    registered = []

    def register(fixture: str) -> None:
        events = email_client().client.meta.events
        handler = _canned(fixture)
        events.register("before-send.sesv2.SendEmail", handler)
        registered.append((events, handler))

    yield register
    for events, handler in registered:
        events.unregister("before-send.sesv2.SendEmail", handler)
