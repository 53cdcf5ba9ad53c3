"""The fake provider HTTP server: Firetext, MMG and SES sends on one port, plus control routes.

Routes
    POST /firetext                      Firetext send (form)
    POST /mmg                           MMG send (JSON, Basic auth)
    POST /v2/email/outbound-emails      SES v2 SendEmail (point AWS_ENDPOINT_URL_SESV2 here)
    GET  /_requests[?provider=name]     every send received, oldest first
    GET  /_receipts                     receipts posted back (and how the service answered)
    GET  /_control                      each provider's behaviour
    POST /_control                      change it: {"provider": "mmg", "error_rate": 0.2}, or
                                        {"provider": "firetext", "down": true, "mode": "timeout"};
                                        without "provider" the change applies to all
    POST /_control/inbound              post a received text to the service, as Firetext or MMG
                                        would: {"provider": "mmg", "source": "07700900123",
                                        "destination": "07700900500", "message": "Hi"}
    POST /_reset                        forget requests and pending receipts, undo /_control

A text sent through the Firetext or MMG fake to a number it hosts (`inbound_numbers`, e.g. a
service's own inbound number) comes back to the service as a received text, from the sender
the text was sent from, as a real provider delivers it.
    POST /service-callback              a service's status callback endpoint (callback_receiver)
    GET  /_callbacks                    the callbacks it received
    POST /_callbacks                    {"signing_secret": "whsec_…"}: verify signatures from now
    POST /service-inbound-callback      a service's inbound callback endpoint (received texts)
    GET  /_inbound-callbacks            the inbound callbacks it received
    POST /_inbound-callbacks            {"signing_secret": "whsec_…"}, as /_callbacks
"""

import json
import logging
import random
import socket
import struct
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

from fakes import callback_receiver
from fakes.behaviour import Behaviour, BehaviourError
from fakes.providers import (
    SMS_FAKES,
    Answer,
    FakeProvider,
    ReceivedText,
    SesFake,
    hosted_number,
)
from fakes.receipts import ReceiptSender

logger = logging.getLogger(__name__)


class FakeProviderServer:
    """Start with `start()` (or as a context manager), stop with `stop()`; `url` is its address."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        receipts_to: str | None = None,
        behaviour: Behaviour | None = None,
        api_keys: dict[str, frozenset[str]] | None = None,
        hang_seconds: float = 11.0,
        seed: int | None = None,
        threads: int = 64,
        keep_requests: int = 100_000,
        ses_region: str = "eu-west-1",
        sns_topic_arn: str | None = None,
        inbound_numbers: tuple[str, ...] = (),
    ):
        api_keys = api_keys or {}
        # Numbers this fake hosts: a text sent to one comes back as a received text.
        self.inbound_numbers = frozenset(hosted_number(number) for number in inbound_numbers)
        self.providers: dict[str, FakeProvider] = {
            **{name: fake(valid_keys=api_keys.get(name)) for name, fake in SMS_FAKES.items()},
            "ses": SesFake(region=ses_region, topic_arn=sns_topic_arn),
        }
        self.routes = {fake.path: fake for fake in self.providers.values()}
        self.initial_behaviour = behaviour or Behaviour()
        self.behaviours = {name: self.initial_behaviour for name in self.providers}
        # How long a "timeout" fault holds the request: past the client's read timeout.
        self.hang_seconds = hang_seconds
        self.rng = random.Random(seed)
        self.receipts = ReceiptSender(base_url=receipts_to)
        self.callbacks = callback_receiver.CallbackReceiver()
        self.inbound_callbacks = callback_receiver.CallbackReceiver()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: deque[dict] = deque(maxlen=keep_requests)
        self._httpd = _Server((host, port), _Handler, self, threads)

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeProviderServer":
        self.receipts.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-providers"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes requests sleeping in a timeout or slow fault
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.close_all()
        self.receipts.stop()

    def __enter__(self) -> "FakeProviderServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- what the control routes do (also called directly by tests) -----------------------------

    def requests(self, provider: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self._requests if provider in (None, r["provider"])]

    def control(self, changes: dict) -> dict[str, dict]:
        changes = dict(changes)
        provider = changes.pop("provider", None)
        if provider is not None and provider not in self.providers:
            raise BehaviourError(f"provider: expected one of {', '.join(self.providers)}")
        with self._lock:
            for name in [provider] if provider else list(self.providers):
                self.behaviours[name] = self.behaviours[name].updated(changes)
        logger.info("fake providers changed", extra={"provider": provider or "all", **changes})
        return self.describe()

    def describe(self) -> dict[str, dict]:
        with self._lock:
            return {name: b.as_dict() for name, b in self.behaviours.items()}

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self.behaviours = {name: self.initial_behaviour for name in self.providers}
        self.receipts.clear()
        self.callbacks.clear()
        self.inbound_callbacks.clear()

    # --- a send -------------------------------------------------------------------------------

    def handle_send(
        self, fake: FakeProvider, body: bytes, headers
    ) -> tuple[str | None, Answer | None, float]:
        """Decide the fault and the answer for one send, record it, and plan its receipts.

        Returns the fault, the answer (None for a reset or a timeout) and how long a slow
        answer waits."""
        behaviour = self.behaviours[fake.name]
        fault = behaviour.fault(self.rng)
        fields, send, refusal = fake.read(body, headers)
        answer, provider_reference, outcome = refusal, None, None
        if fault in ("reset", "timeout"):
            answer = None
        elif fault == "error":
            answer = fake.server_error(503 if behaviour.down else self.rng.choice((500, 503)))
        elif fault == "malformed":
            answer = self.rng.choice(fake.malformed())
        elif fault in (None, "slow") and send is not None:
            answer, provider_reference = fake.accept(send)
            outcome = behaviour.outcome(self.rng)
        self._record(fake, fields, send, fault, answer, provider_reference, outcome)
        if outcome and self.receipts.enabled:
            self._plan_receipts(fake, send, provider_reference, outcome, behaviour)
            if hosted_number(send.to) in self.inbound_numbers:
                text = ReceivedText(
                    source=send.source or "", destination=send.to, message=send.message
                )
                self.receipts.schedule(
                    fake.received_text_post(text, datetime.now(UTC)), behaviour.receipt_delay
                )
        return fault, answer, behaviour.slow_seconds

    def received_text_post(self, request: dict) -> dict:
        """`POST /_control/inbound`: someone texts `destination` from `source`; the provider
        named (an SMS one: firetext, mmg) posts it to the service at once."""
        provider = request.get("provider")
        fake = self.providers.get(provider) if provider in SMS_FAKES else None
        if fake is None:
            raise BehaviourError(f"provider: expected {' or '.join(SMS_FAKES)}")
        fields = {name: request.get(name) for name in ("source", "destination", "message")}
        wrong = [name for name, value in fields.items() if not isinstance(value, str)]
        if wrong:
            raise BehaviourError(f"{', '.join(wrong)}: expected text")
        if not self.receipts.enabled:
            raise BehaviourError("no service to post to (started without receipts_to)")
        post = fake.received_text_post(ReceivedText(**fields), datetime.now(UTC))
        self.receipts.schedule(post, 0.0)
        return {"result": "queued", "provider": provider, "reference": post.reference}

    def _plan_receipts(self, fake, send, provider_reference, outcome, behaviour) -> None:
        planned = fake.receipts(
            send,
            provider_reference,
            outcome,
            rng=self.rng,
            now=datetime.now(UTC),
            delay=behaviour.receipt_delay,
        )
        for delay, receipt in planned:
            self.receipts.schedule(receipt, delay)
            if self.rng.random() < behaviour.duplicate_rate:
                self.receipts.schedule(receipt, delay)

    def _record(self, fake, fields, send, fault, answer, provider_reference, outcome) -> None:
        with self._lock:
            self._requests.append(
                {
                    "provider": fake.name,
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "fields": fields,
                    "to": send.to if send else None,
                    "reference": send.reference if send else None,
                    "provider_reference": provider_reference,
                    "fault": fault,
                    "status": answer.status if answer else None,
                    "outcome": outcome,
                }
            )


class _Server(HTTPServer):
    """An HTTP server whose connections run on a bounded pool of threads."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: socketserver's 5 refuses bursts of clients

    def __init__(self, address, handler, fake: FakeProviderServer, threads: int):
        super().__init__(address, handler)
        self.fake = fake
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fake-providers-http")
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._open_lock:
            self._open.add(request)
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client hung up: expected, and the point of some faults
        except Exception:
            logger.exception("fake providers: request failed")
        finally:
            with self._open_lock:
                self._open.discard(request)
            self.shutdown_request(request)

    def close_all(self) -> None:
        """Drop idle keep-alive and queued connections so that the pool can finish."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        for connection in connections:
            connection.close()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the providers' real endpoints
    server_version = "FakeProviders/1.0"
    timeout = 15  # an idle keep-alive connection is closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm and the client's delayed ACK add ~40 ms to answers.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        fake = self.server.fake
        if path == "/_requests":
            provider = parse_qs(query).get("provider", [None])[0]
            requests = fake.requests(provider)
            self._answer(Answer.json(200, {"count": len(requests), "requests": requests}))
        elif path == "/_receipts":
            receipts = fake.receipts.posted()
            pending = fake.receipts.pending()
            self._answer(Answer.json(200, {"pending": pending, "posted": receipts}))
        elif path == "/_control":
            self._answer(Answer.json(200, fake.describe()))
        elif path in ("/_callbacks", "/_inbound-callbacks"):
            receiver = fake.callbacks if path == "/_callbacks" else fake.inbound_callbacks
            callbacks = receiver.received()
            self._answer(Answer.json(200, {"count": len(callbacks), "callbacks": callbacks}))
        elif path == "/":
            routes = {name: p.path for name, p in fake.providers.items()}
            self._answer(Answer.json(200, {"fake providers": routes}))
        else:
            self._answer(Answer.json(404, {"error": f"no route {path}"}))

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        body = self._body()
        fake = self.server.fake
        if path in fake.routes:
            self._send(fake.routes[path], body)
        elif path == "/_control":
            self._control(body)
        elif path == "/_control/inbound":
            self._received_text(body)
        elif path == callback_receiver.PATH:
            self._answer(Answer.json(*fake.callbacks.take(body, self.headers)))
        elif path == callback_receiver.INBOUND_PATH:
            self._answer(Answer.json(*fake.inbound_callbacks.take(body, self.headers)))
        elif path == "/_callbacks":
            self._configure_callbacks(fake.callbacks, body)
        elif path == "/_inbound-callbacks":
            self._configure_callbacks(fake.inbound_callbacks, body)
        elif path == "/_reset":
            fake.reset()
            self._answer(Answer.json(200, {"result": "reset"}))
        else:
            self._answer(Answer.json(404, {"error": f"no route {path}"}))

    def _send(self, provider: FakeProvider, body: bytes) -> None:
        fake = self.server.fake
        fault, answer, slow_seconds = fake.handle_send(provider, body, self.headers)
        if fault == "reset":
            self._reset_connection()
            return
        if fault == "timeout":
            # Hold the request past the client's timeout, then hang up without an answer.
            fake.stopping.wait(fake.hang_seconds)
            self.close_connection = True
            return
        if fault == "slow":
            fake.stopping.wait(slow_seconds)
        self._answer(answer)

    def _control(self, body: bytes) -> None:
        try:
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise BehaviourError("expected a JSON object")
            self._answer(Answer.json(200, self.server.fake.control(changes)))
        except (ValueError, TypeError) as err:
            self._answer(Answer.json(400, {"error": str(err)}))

    def _received_text(self, body: bytes) -> None:
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise BehaviourError("expected a JSON object")
            self._answer(Answer.json(200, self.server.fake.received_text_post(request)))
        except (ValueError, TypeError) as err:
            self._answer(Answer.json(400, {"error": str(err)}))

    def _configure_callbacks(self, receiver: callback_receiver.CallbackReceiver, body: bytes):
        try:
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            self._answer(Answer.json(200, receiver.configure(changes)))
        except ValueError as err:
            self._answer(Answer.json(400, {"error": str(err)}))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def _reset_connection(self) -> None:
        # SO_LINGER 0: closing sends a TCP RST instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        logger.debug("fake providers: %s", format % args)
