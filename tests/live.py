"""This service under gunicorn, as in production, on this run's test database (for tests that
need a real HTTP server: chunked bodies, the schema fuzzing)."""

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings

from tests.conftest import REPO_ROOT, free_port, subprocess_env


@contextmanager
def running_gunicorn(*, workers: int = 2, **env: str) -> Iterator[str]:
    """Yields the server's base URL; its log is shown if it fails to start. DEBUG is off, as in
    production (with it on, Django answers errors with its HTML debug pages)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "notifyproject.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--timeout=60",
        ],
        cwd=REPO_ROOT,
        env=subprocess_env(
            **{
                "LOG_LEVEL": "WARNING",
                "DEBUG": "false",
                "SECRET_KEY": "live-server-test-key",
                # The test's own, so that the server can read the secrets of keys a test
                # issues (they sign the /v2 API's tokens).
                "API_KEY_ENCRYPTION_KEYS": ",".join(settings.API_KEY_ENCRYPTION_KEYS),
                "ALLOWED_HOSTS": "127.0.0.1",
                **env,
            }
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/livez", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start:\n{Path(log.name).read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
