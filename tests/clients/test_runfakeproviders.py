"""`manage.py runfakeproviders` as an operator runs it: a process that serves until signalled."""

import signal
import subprocess
import sys
import threading

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.conftest import REPO_ROOT, subprocess_env


def test_it_serves_with_the_faults_asked_for_and_stops_cleanly_on_sigterm():
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "runfakeproviders",
            "--port",
            "0",
            "--receipts-to",
            "",
            "--error-rate",
            "1",
            "--seed",
            "7",
        ],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = [None]
        reader = threading.Thread(target=lambda: first.__setitem__(0, process.stdout.readline()))
        reader.start()
        reader.join(timeout=30)
        assert first[0] and first[0].startswith("Fake providers listening on http://127.0.0.1:")
        url = first[0].split()[-1]

        answer = requests.post(f"{url}/firetext", data={"apiKey": "k", "to": "1"}, timeout=5)
        assert answer.status_code in (500, 503)

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Stopping fake providers" in output


def test_a_bad_outcome_mix_stops_it_before_it_starts():
    with pytest.raises(CommandError, match="outcomes: unknown lost"):
        call_command("runfakeproviders", "--port", "0", "--outcomes", "delivered=1,lost=2")


def test_a_bad_rate_stops_it_before_it_starts():
    with pytest.raises(CommandError, match="timeout_rate: expected a number from 0 to 1"):
        call_command("runfakeproviders", "--port", "0", "--timeout-rate", "2")
