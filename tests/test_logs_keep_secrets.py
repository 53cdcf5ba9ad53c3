"""Every log line of the main flows, as the log formatter writes it, holds no full phone number,
email address, API key or password (issue 10): the API, sends, retries and failover, receipts
(good and refused), replays and the fake providers, over real HTTP."""

import logging
import re
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from django.core.management import call_command

from fakes import Behaviour
from notifyproject.logging import KeyValueFormatter
from receipts.models import Receipt, ReceiptState
from sending.models import ApiKey, Notification, Service
from sending.tasks import deliver_email, deliver_sms
from tests.fakes import FIRETEXT_API_KEY, MMG_API_KEY, running_fake_providers

pytestmark = pytest.mark.django_db(transaction=True)

UK_MOBILE = "07700 900456"  # normalised to 447700900456
INTERNATIONAL = "+1 202 555 0147"
EMAIL = "jane.doe+notify@example.org"
RECEIPT_USER, RECEIPT_PASSWORD = "provider", "receipt-pass-4f9a1c"

# Any way the numbers and the address could appear in full.
PERSONAL = [
    re.compile(r"7700[\s-]?900[\s-]?456"),
    re.compile(r"202[\s-]?555[\s-]?0147"),
    re.compile(r"jane\.doe"),
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]"),  # any whole address
]


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(KeyValueFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def captured():
    """Every record from every logger, at DEBUG, formatted as production writes it."""
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def wait_for(check, what, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what()}")


def test_no_log_line_of_the_main_flows_holds_personal_data_or_secrets(
    captured, live_server, settings, monkeypatch
):
    settings.CALLBACK_BASIC_AUTH = [(RECEIPT_USER, RECEIPT_PASSWORD)]
    settings.SNS_VERIFY_SIGNATURES = False  # the fake's SNS messages are unsigned
    _, api_key = ApiKey.issue(Service.objects.create(name="Logged"))
    auth = {"Authorization": f"Bearer {api_key}"}
    web = live_server.url
    parts = urlsplit(web)
    receipts_to = f"http://{RECEIPT_USER}:{RECEIPT_PASSWORD}@{parts.netloc}"
    api = requests.Session()
    api.headers.update(auth)

    with running_fake_providers(
        receipts_to=receipts_to,
        behaviour=Behaviour(receipt_delay=0.0, outcomes={"delivered": 1, "permanent-failure": 1}),
    ) as fake:
        fake.configure_clients(settings, monkeypatch)

        # The API: accepted, refused, read back.
        created = [
            api.post(f"{web}/notifications/sms", json={"phone_number": number, "content": "hi"})
            for number in (UK_MOBILE, INTERNATIONAL)
        ]
        created.append(
            api.post(
                f"{web}/notifications/email",
                json={"email_address": EMAIL, "subject": "Hello", "content": "Body"},
            )
        )
        assert [r.status_code for r in created] == [201, 201, 201]
        refused = api.post(
            f"{web}/notifications/sms", json={"phone_number": "07700 90045", "content": "x"}
        )
        assert refused.status_code == 400
        api.post(f"{web}/notifications/email", json={"email_address": EMAIL + "@", "subject": 1})
        requests.get(f"{web}/notifications", headers={"Authorization": "Bearer wrong-key"})
        api.get(f"{web}/notifications/{created[0].json()['id']}")
        api.get(f"{web}/notifications", params={"status": "delivered"})

        # Sends, with receipts coming back over HTTP.
        ids = [r.json()["id"] for r in created]
        deliver_sms(ids[0])
        deliver_sms(ids[1])
        deliver_email(ids[2])

        # Each receipt posted back and answered (an SES one may beat the send's own write of
        # the message id and find nothing: answered all the same).
        wait_for(
            lambda: len([r for r in fake.receipts() if "answer" in r]) >= 3,
            lambda: f"every receipt answered: {fake.receipts()}",
        )
        assert Notification.objects.exclude(status="created").count() == 3

        # A send that fails on both SMS providers: failover, then a retry planned.
        fake.control(down=True)
        failing = api.post(
            f"{web}/notifications/sms", json={"phone_number": UK_MOBILE, "content": "x"}
        )
        deliver_sms(failing.json()["id"])
        assert Notification.objects.get(id=failing.json()["id"]).retry_count == 1

    # Receipts refused and failed, naming the recipient, then replayed.
    receipt_auth = (RECEIPT_USER, RECEIPT_PASSWORD)
    requests.post(
        f"{web}/notifications/sms/firetext",
        data={"mobile": "447700900456", "status": "9", "reference": str(uuid.uuid4())},
        auth=receipt_auth,
    )
    requests.post(
        f"{web}/notifications/sms/mmg",
        json={"MSISDN": "447700900456", "status": "3", "CID": "not a uuid"},
        auth=receipt_auth,
    )
    requests.post(f"{web}/notifications/sms/firetext", data={"mobile": "447700900456"})
    Receipt.objects.create(
        provider="mmg",
        body=f'{{"MSISDN": "447700900456", "status": "3", "CID": "{ids[0]}"}}',
        content_type="application/json",
        state=ReceiptState.FAILED,
    )
    call_command("replay_receipts", "--settle-seconds", "0", "--rejected")

    lines = captured.lines
    assert len(lines) > 20, "the flows logged next to nothing: is the capture working?"
    secrets = [api_key, RECEIPT_PASSWORD, FIRETEXT_API_KEY, MMG_API_KEY]
    offending = [
        line
        for line in lines
        if any(secret in line for secret in secrets) or any(p.search(line) for p in PERSONAL)
    ]
    assert offending == []
