"""Fixtures for the client and fake provider tests: fake providers and moto (from tests/fakes.py), a
receipt catcher."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import FIXTURES
from tests.fakes import (  # noqa: F401  (fixtures)
    _moto_server,
    fake_clients,
    fake_providers,
    moto_ses,
    ses_answers,
)


def fixture_text(provider: str, name: str) -> str:
    return (FIXTURES / provider / name).read_text()


def fixture_json(provider: str, name: str) -> dict:
    return json.loads(fixture_text(provider, name))


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> object:
    """Poll until `predicate()` is truthy; its value, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            assert value, f"still false after {timeout}s"
            return value
        time.sleep(0.02)


class ReceiptCatcher:
    """A tiny HTTP server standing in for the service's receipt endpoints."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.answer_status = 200
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                catcher.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                payload = b'{"result": "success"}'
                self.send_response(catcher.answer_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def wait(self, count: int, timeout: float = 5.0) -> list[dict]:
        wait_for(lambda: len(self.received) >= count, timeout)
        return self.received

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receipt_catcher() -> Iterator[ReceiptCatcher]:
    catcher = ReceiptCatcher()
    yield catcher
    catcher.stop()
