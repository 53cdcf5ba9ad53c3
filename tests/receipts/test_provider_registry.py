"""A new SMS provider is one entry in `settings.SMS_PROVIDERS` (with its client, parsers and
settings): its receipt and received-text endpoints, their credentials, the receipts' provider
choices, its client and the channel its receipts may name all follow, with no other file
touched. Run in a process of its own, since URLs and choices are made once, at start."""

import base64
import json
import os
import subprocess
import sys

from django.conf import settings

SCRIPT = """
import json
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
from receipts.models import ReceiptProvider
from sending.clients import SMS_CLIENTS
from sending.providers import PROVIDERS
from sending.status import PROVIDER_CHANNELS

client = Client()
answers = {}
for path in ("/notifications/sms/acme", "/notifications/sms/receive/acme"):
    response = client.post(path, "status=0", content_type="application/x-www-form-urlencoded",
                           HTTP_AUTHORIZATION=__import__("sys").argv[1])
    answers[path] = [response.status_code, response.json()]
print(json.dumps({
    "answers": answers,
    "choices": ReceiptProvider.choices,
    "client": SMS_CLIENTS["acme"].__name__,
    "channel": PROVIDER_CHANNELS.get("acme"),
    "row": [list(row) for row in PROVIDERS if row[0] == "acme"],
}))
"""


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_an_sms_provider_added_to_the_registry_gets_its_endpoints_and_the_rest():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.receipts.acme.settings", "DEBUG": "true"}
    # Firetext's credentials are not Acme's: both of Acme's endpoints ask for its own.
    firetext_pair = _basic("firetext", "not-acme")
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, firetext_pair],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])

    assert got["answers"] == {
        "/notifications/sms/acme": [
            401,
            {"result": "error", "message": ["Acme callback failed: authentication required"]},
        ],
        "/notifications/sms/receive/acme": [
            401,
            {"result": "error", "message": ["Acme callback failed: authentication required"]},
        ],
    }
    assert ["acme", "Acme"] in got["choices"]
    assert ["acme-inbound", "Acme received text"] in got["choices"]
    assert got["client"] == "AcmeClient"
    assert got["channel"] == "sms"
    assert got["row"] == [["acme", "Acme", "sms", 0, False]]
