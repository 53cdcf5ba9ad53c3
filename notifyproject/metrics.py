"""Metrics to statsd over UDP (python-statsd), or nowhere when STATSD_HOST is unset.

Names are relative to STATSD_PREFIX. Durations come from a monotonic clock.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import statsd
from django.conf import settings

_client: statsd.Client | None = None
_configured = False


def configure(*, host: str | None, port: int = 8125, prefix: str = "notify") -> None:
    """Point metrics somewhere else (or nowhere, with host None); tests use this."""
    global _client, _configured
    _client = statsd.Client(prefix, statsd.Connection(host=host, port=port)) if host else None
    _configured = True


def _get() -> statsd.Client | None:
    if not _configured:
        configure(
            host=settings.STATSD_HOST, port=settings.STATSD_PORT, prefix=settings.STATSD_PREFIX
        )
    return _client


def incr(name: str, count: int = 1) -> None:
    if client := _get():
        client.get_counter(name).increment(delta=count)


def timing(name: str, seconds: float) -> None:
    if client := _get():
        client.get_timer(name).send(None, seconds)


def gauge(name: str, value: float) -> None:
    if client := _get():
        client.get_gauge(name).send(None, value)


@contextmanager
def timer(name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timing(name, time.perf_counter() - start)
