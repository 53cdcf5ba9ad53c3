"""Shared fixtures: a service with an API key, an authenticated client, the test database."""

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django_q.models import Schedule
from rest_framework.test import APIClient

import receipts.tasks
from notifyproject import metrics
from receipts import inbox
from receipts.inbox import receipt_drain_slot_free
from sending.engine import delivery_drain_slot_free
from sending.models import (
    ApiKey,
    NotificationType,
    ProviderDetails,
    ProviderDetailsHistory,
    Service,
)
from sending.providers import providers_seed
from sending.schedules import schedules_ensure


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    # SQLite tests use a file, not memory, so that tests which start real processes
    # (web server, qcluster) can open the same test database.
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _seeded_after_flush(request):
    """A transactional test ends by flushing every table, rows that migrations seeded included;
    put the providers and schedules back for the tests that come after. The cache's table is
    not flushed: a receipt drain asked for by an earlier test (queued, never run) would hold
    the drain's slot for its whole lease."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
        providers_seed(ProviderDetails, ProviderDetailsHistory)
        schedules_ensure(Schedule)
        receipt_drain_slot_free()


@pytest.fixture(autouse=True)
def _receipt_drain_memo(monkeypatch):
    """Each test starts with no memory of asking for the receipt drain, and the drain's pause
    before its last look moves the inbox's clock instead of waiting."""
    moved = [0.0]
    monkeypatch.setattr(inbox, "clock", lambda: time.monotonic() + moved[0])
    monkeypatch.setattr(
        receipts.tasks, "pause", lambda seconds: moved.__setitem__(0, moved[0] + seconds)
    )
    inbox.receipt_drain_memo_forget()
    yield
    inbox.receipt_drain_memo_forget()


@pytest.fixture(autouse=True)
def _delivery_drain_slots_free(request):
    """A drain asked for by an earlier test (queued, never run) holds its channel's slot in the
    cache for its whole lease, and Redis outlives a test's database: each test that uses the
    database starts with every delivery drain slot free."""
    marker = request.node.get_closest_marker("django_db")
    if marker or {"db", "transactional_db"} & set(request.fixturenames):
        request.getfixturevalue(
            "transactional_db" if "transactional_db" in request.fixturenames else "db"
        )
        for channel in NotificationType.values:
            delivery_drain_slot_free(channel)


@pytest.fixture
def service(db) -> Service:
    return Service.objects.create(name="Test service")


@pytest.fixture
def api_key(service) -> str:
    _, secret = ApiKey.issue(service)
    return secret


@pytest.fixture
def api_client(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


def database_url_for_subprocess() -> str:
    """A DATABASE_URL that points a child process at this run's test database."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def subprocess_env(**overrides: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "DEBUG": "true"}
    env.update(overrides)
    return env


REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    """A loopback port nothing listens on right now, for a child process to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StatsdListener:
    """A real UDP socket on loopback that the metrics module sends to."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def read(self, count: int) -> list[str]:
        """Exactly `count` metric lines (one per packet), waiting up to 2 s for each."""
        self.sock.settimeout(2)
        return [self.sock.recv(65536).decode() for _ in range(count)]

    def received(self) -> list[str]:
        """Every line that arrived, until 0.2 s pass with nothing more."""
        self.sock.settimeout(0.2)
        lines: list[str] = []
        while True:
            try:
                lines += self.sock.recv(65536).decode().splitlines()
            except TimeoutError:
                return lines


@pytest.fixture
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    metrics.configure(host="127.0.0.1", port=listener.port, prefix="notify")
    yield listener
    metrics.configure(
        host=settings.STATSD_HOST, port=settings.STATSD_PORT, prefix=settings.STATSD_PREFIX
    )
    listener.sock.close()
