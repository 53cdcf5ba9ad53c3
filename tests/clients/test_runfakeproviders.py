"""`manage.py runfakeproviders` as an operator runs it: a process that serves until signalled."""

import signal
import subprocess
import sys
import threading

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.conftest import REPO_ROOT, subprocess_env


class Running:
    """The command, started with `options`; every line it prints is kept by a reader thread
    (reading the pipe in two ways could lose what one of them had buffered)."""

    def __init__(self, *options: str):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runfakeproviders", "--port", "0", *options],
            cwd=REPO_ROOT,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read)
        self.reader.start()
        if not self.started.wait(timeout=30):
            self.stop()
            raise AssertionError(f"runfakeproviders did not start: {self.output()!r}")
        self.url = self.lines[0].split()[-1]

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Fake providers listening on http://127.0.0.1:"):
                self.started.set()

    def stop(self) -> str:
        """SIGTERM, and all it printed."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.reader.join(timeout=10)
        return self.output()

    def output(self) -> str:
        return "".join(self.lines)


def test_it_serves_with_the_faults_asked_for_and_stops_cleanly_on_sigterm():
    fake = Running("--receipts-to", "", "--error-rate", "1", "--seed", "7")
    try:
        answer = requests.post(f"{fake.url}/firetext", data={"apiKey": "k", "to": "1"}, timeout=5)
        assert answer.status_code in (500, 503)
    finally:
        output = fake.stop()
    assert fake.process.returncode == 0
    assert "Stopping fake providers" in output


def test_it_never_prints_the_receipt_urls_password():
    output = Running("--receipts-to", "http://provider:s3cret-pass@127.0.0.1:9").stop()

    assert "s3cret-pass" not in output
    assert "receipts to http://provider:***@127.0.0.1:9;" in output


def test_a_bad_outcome_mix_stops_it_before_it_starts():
    with pytest.raises(CommandError, match="outcomes: unknown lost"):
        call_command("runfakeproviders", "--port", "0", "--outcomes", "delivered=1,lost=2")


def test_a_bad_rate_stops_it_before_it_starts():
    with pytest.raises(CommandError, match="timeout_rate: expected a number from 0 to 1"):
        call_command("runfakeproviders", "--port", "0", "--timeout-rate", "2")
