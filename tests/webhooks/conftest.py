"""A service's callback endpoint for the tests: a real HTTP server on 127.0.0.1 in a thread,
answering as each test tells it (a status code, a redirect, a slow answer, a wait past the
client's timeout) and keeping every request it got (path, headers, body, when it came)."""

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django_q.brokers import get_broker

from sending.models import Notification, NotificationStatus
from sending.services import notification_create
from sending.status import notification_update_status
from webhooks import delivery, sweeps
from webhooks.models import CallbackEvent, ServiceCallback
from webhooks.services import service_callback_set

BEARER_TOKEN = "service-callback-token-1234"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it came


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # hold the request until the test ends (past the client's timeout)
    delay: float = 0.0  # seconds before answering (a slow endpoint, inside the timeout)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: deque[Answer] = deque()
        self.default = Answer()
        self.release = threading.Event()
        self.in_flight = self.most_in_flight = 0  # requests held at once
        self.in_flight_on_arrival: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(self.path, headers, body, time.monotonic()))
                answer = receiver.answers.popleft() if receiver.answers else receiver.default
                with receiver._lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                    receiver.in_flight_on_arrival.append(receiver.in_flight)
                if answer.hang:
                    receiver.release.wait(30)
                    self.close_connection = True
                elif answer.delay:
                    receiver.release.wait(answer.delay)
                with receiver._lock:  # answered from here on, as the client may see
                    receiver.in_flight -= 1
                if not answer.hang:
                    self._answer(answer)

            def _answer(self, answer: Answer) -> None:
                reply = b'{"ok": true}'
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/callbacks/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def insecure(settings):
    """Plain http:// to 127.0.0.1 allowed, as in `make run` and the tests."""
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    settings.SERVICE_CALLBACK_TIMEOUT_SECONDS = 0.5
    return settings


@dataclass
class Configured:
    callback: ServiceCallback
    signing_secret: str


@pytest.fixture
def callback(service, receiver, insecure) -> Configured:
    made, secret = service_callback_set(
        service=service, url=receiver.url, bearer_token=BEARER_TOKEN
    )
    return Configured(made, secret)


def text(service, **fields) -> Notification:
    notification = notification_create(
        service=service,
        notification_type="sms",
        recipient="447700900123",
        content="Your code is 1234",
        client_reference=fields.pop("client_reference", "client-ref-1"),
    )
    if fields:
        Notification.objects.filter(id=notification.id).update(**fields)
        notification.refresh_from_db()
    return notification


def final_event(service) -> CallbackEvent:
    """A new text of `service`, delivered: its status event."""
    notification = text(service)
    notification_update_status(notification_id=notification.id, status=NotificationStatus.DELIVERED)
    return CallbackEvent.objects.get(notification=notification)


def send(event: CallbackEvent) -> str | None:
    """What the send task does with the event; its new state, or None when it was not sent."""
    return delivery.callback_event_send(event_id=str(event.id))


class Clock:
    """The sender's and the sweep's clock, under the test's control: it moves only when told,
    or when a drain waits for a retry (each wait is kept, in seconds)."""

    def __init__(self, monkeypatch):
        # A little ahead of the wall clock, so events written during the test are due.
        self.current = datetime.now(UTC) + timedelta(seconds=1)
        self.waits: list[float] = []
        for module in (delivery, sweeps):
            monkeypatch.setattr(module, "now", lambda: self.current)
        monkeypatch.setattr(delivery, "sleep", self._sleep)

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)

    def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.advance(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def callbacks_broker():
    """The callbacks cluster's queue, where drains are queued."""
    return get_broker(settings.CALLBACK_QUEUE)
