"""The fake provider server itself: outcome mix, receipts in the providers' formats, control
routes, faults and shutdown."""

import json
import random
import re
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import requests

from fakes import Behaviour, BehaviourError, FakeProviderServer, parse_outcomes
from sending.clients import email_client, sms_client
from tests.clients.conftest import wait_for
from tests.fakes import FakeProviders, running_fake_providers

REFERENCE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
# Contract section 6: Firetext codes by the status they give a declined (status 1) text.
FIRETEXT_PERMANENT_CODES = {"101", "201", "301", "401"}
FIRETEXT_TEMPORARY_CODES = {"000", "102", "103", "104", "302", "900"}
# MMG status → our status.
MMG_STATUSES = {
    2: "permanent-failure",
    3: "delivered",
    4: "temporary-failure",
    5: "permanent-failure",
}


def only(outcome: str, **changes) -> Behaviour:
    return Behaviour(outcomes={outcome: 1}, receipt_delay=0).updated(changes)


@pytest.fixture
def with_receipts(receipt_catcher, settings, monkeypatch):
    """Starts a fake that posts receipts to the catcher, with the clients pointed at it."""
    with ExitStack() as stack:

        def start(behaviour: Behaviour, **options):
            fake = stack.enter_context(
                running_fake_providers(
                    receipts_to=receipt_catcher.url, behaviour=behaviour, **options
                )
            )
            fake.configure_clients(settings, monkeypatch)
            return fake

        yield start


def send_text(provider: str) -> str | None:
    return sms_client(provider).send_sms(to="447700900123", content="Hi", reference=REFERENCE)


def form(receipt: dict) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(receipt["body"].decode()).items()}


# --- behaviour ------------------------------------------------------------------------------------


def test_outcomes_follow_their_weights():
    behaviour = Behaviour(
        outcomes=parse_outcomes("delivered=70,permanent-failure=20,no-receipt=10")
    )
    rng = random.Random(1)

    counts = Counter(behaviour.outcome(rng) for _ in range(20_000))

    assert set(counts) == {"delivered", "permanent-failure", "no-receipt"}
    assert counts["delivered"] / 20_000 == pytest.approx(0.7, abs=0.02)
    assert counts["permanent-failure"] / 20_000 == pytest.approx(0.2, abs=0.02)


def test_fault_rates_are_exclusive_probabilities():
    behaviour = Behaviour(error_rate=0.25, timeout_rate=0.1, slow_rate=0.05)
    rng = random.Random(2)

    counts = Counter(behaviour.fault(rng) for _ in range(20_000))

    assert counts["error"] / 20_000 == pytest.approx(0.25, abs=0.02)
    assert counts["timeout"] / 20_000 == pytest.approx(0.1, abs=0.02)
    assert counts["slow"] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert counts[None] / 20_000 == pytest.approx(0.6, abs=0.02)
    assert not {"reset", "malformed"} & set(counts)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"error_rate": 1.5}, "error_rate: expected a number from 0 to 1"),
        ({"error_rate": "high"}, "error_rate: expected a number from 0 to 1"),
        ({"loud_rate": 0.1}, "loud_rate: expected a number from 0 to 1"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"down": "yes"}, "down: expected true or false"),
        ({"mode": "explode"}, "mode: expected one of error, timeout, reset"),
        ({"outcomes": {"lost": 1}}, "outcomes: unknown lost"),
        ({"outcomes": {"delivered": 0}}, "outcomes: weights must be numbers >= 0, not all 0"),
        ({"outcomes": "delivered"}, "outcomes: expected name=weight, got 'delivered'"),
        ({"receipt_delay": -1}, "receipt_delay: expected a number of seconds >= 0"),
    ],
)
def test_bad_changes_are_refused_with_the_field_named(changes, message):
    with pytest.raises(BehaviourError) as caught:
        Behaviour().updated(changes)
    assert message in str(caught.value)


# --- receipts -------------------------------------------------------------------------------------


def test_firetext_delivered_receipt_is_a_form_post_in_uk_local_time(with_receipts, receipt_catcher):
    with_receipts(only("delivered"))

    send_text("firetext")

    [receipt] = receipt_catcher.wait(1)
    assert receipt["path"] == "/notifications/sms/firetext"
    assert receipt["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    fields = form(receipt)
    assert {k: fields[k] for k in ("mobile", "status", "reference")} == {
        "mobile": "447700900123",
        "status": "0",
        "reference": REFERENCE,
    }
    assert "code" not in fields
    sent_at = datetime.strptime(fields["time"], "%Y-%m-%d %H:%M:%S")
    uk_now = datetime.now(ZoneInfo("Europe/London")).replace(tzinfo=None)
    assert abs(uk_now - sent_at) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("outcome", "codes"),
    [
        ("permanent-failure", FIRETEXT_PERMANENT_CODES),
        ("temporary-failure", FIRETEXT_TEMPORARY_CODES),
    ],
)
def test_firetext_failures_are_status_1_with_a_code_of_that_kind(
    with_receipts, receipt_catcher, outcome, codes
):
    with_receipts(only(outcome))

    for _ in range(6):
        send_text("firetext")

    receipts = [form(r) for r in receipt_catcher.wait(6)]
    assert {r["status"] for r in receipts} == {"1"}
    assert {r["code"] for r in receipts} <= codes


def test_firetext_pending_then_delivered_is_status_2_then_0(with_receipts, receipt_catcher):
    # Two threads post the two receipts, so they may arrive in either order on a loaded
    # machine: what the fake promises is the times it reports, a whole second apart here.
    with_receipts(only("pending-then-delivered", receipt_delay=1.0))

    send_text("firetext")

    receipts = sorted(
        (form(r) for r in receipt_catcher.wait(2, timeout=15)), key=lambda r: r["time"]
    )
    assert [r["status"] for r in receipts] == ["2", "0"]
    assert receipts[0]["time"] < receipts[1]["time"]


def test_firetext_receipt_goes_to_the_url_the_send_named(with_receipts, receipt_catcher, settings):
    with_receipts(only("delivered"))
    settings.FIRETEXT_RECEIPT_URL = f"{receipt_catcher.url}/elsewhere/firetext"

    send_text("firetext")

    assert receipt_catcher.wait(1)[0]["path"] == "/elsewhere/firetext"


@pytest.mark.parametrize(
    "outcome", ["delivered", "permanent-failure", "temporary-failure", "pending-then-delivered"]
)
def test_mmg_receipt_is_json_with_status_and_substatus(with_receipts, receipt_catcher, outcome):
    with_receipts(only(outcome))

    mmg_reference = send_text("mmg")

    [receipt] = receipt_catcher.wait(1)
    assert receipt["path"] == "/notifications/sms/mmg"
    assert receipt["headers"]["Content-Type"] == "application/json"
    body = json.loads(receipt["body"])
    assert set(body) == {"reference", "CID", "MSISDN", "status", "substatus", "deliverytime"}
    assert (body["reference"], body["CID"], body["MSISDN"]) == (
        mmg_reference,
        REFERENCE,
        "447700900123",
    )
    expected = "delivered" if outcome == "pending-then-delivered" else outcome
    assert MMG_STATUSES[body["status"]] == expected
    if expected == "delivered":
        assert body["substatus"] in (2, 5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["deliverytime"])


@pytest.mark.parametrize(
    ("outcome", "notification_type", "bounce_type"),
    [
        ("delivered", "Delivery", None),
        ("permanent-failure", "Bounce", "Permanent"),
        ("temporary-failure", "Bounce", "Transient"),
    ],
)
def test_ses_receipt_is_an_sns_notification_around_an_ses_event(
    with_receipts, receipt_catcher, outcome, notification_type, bounce_type
):
    with_receipts(only(outcome))

    message_id = email_client().send_email(
        to="someone@example.com", subject="Hi", body="Hello", reference=REFERENCE
    )

    [receipt] = receipt_catcher.wait(1)
    assert receipt["path"] == "/notifications/email/ses"
    assert receipt["headers"]["Content-Type"].startswith("text/plain")
    assert receipt["headers"]["x-amz-sns-message-type"] == "Notification"
    envelope = json.loads(receipt["body"])
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"].startswith("arn:aws:sns:")
    message = json.loads(envelope["Message"])
    assert message["notificationType"] == notification_type
    assert message["mail"]["messageId"] == message_id
    assert message["mail"]["destination"] == ["someone@example.com"]
    if bounce_type:
        assert message["bounce"]["bounceType"] == bounce_type
        assert message["bounce"]["bouncedRecipients"][0]["emailAddress"] == "someone@example.com"
    else:
        assert message["delivery"]["recipients"] == ["someone@example.com"]


def test_duplicates_repeat_a_receipt_exactly(with_receipts, receipt_catcher):
    with_receipts(only("delivered", duplicate_rate=1))

    send_text("mmg")

    first, second = receipt_catcher.wait(2)
    assert first["body"] == second["body"]


def test_no_receipt_outcome_and_failed_sends_post_nothing(with_receipts, receipt_catcher):
    fake = with_receipts(only("no-receipt"))
    send_text("firetext")
    fake.control(outcomes={"delivered": 1}, provider="mmg", down=True)
    with pytest.raises(Exception):  # noqa: B017 - the client's error, tested elsewhere
        send_text("mmg")

    # A marker: a text that does get a receipt, sent after them at the same delay (none). Once its
    # receipt is in, any receipt the first two had been given would have been posted too.
    fake.control(outcomes={"delivered": 1}, provider="firetext", down=False)
    send_text("firetext")
    [marker] = receipt_catcher.wait(1)
    assert form(marker)["status"] == "0"
    assert receipt_catcher.received == [marker]
    assert [r["outcome"] for r in fake.requests()] == ["no-receipt", None, "delivered"]


def test_a_refused_or_undeliverable_receipt_is_logged_and_the_fake_goes_on(
    with_receipts, receipt_catcher, caplog
):
    fake = with_receipts(only("delivered"))
    receipt_catcher.answer_status = 500
    send_text("firetext")
    wait_for(lambda: fake.receipts())
    receipt_catcher.stop()  # now nothing listens at --receipts-to

    send_text("firetext")

    answers = [r["answer"] for r in wait_for(lambda: len(fake.receipts()) == 2 and fake.receipts())]
    assert answers == [500, "ConnectionError"]
    assert {r.getMessage() for r in caplog.records} >= {
        "fake receipt refused",
        "fake receipt not delivered",
    }
    assert send_text("mmg")


# --- control routes and faults --------------------------------------------------------------------


def test_requests_are_listed_per_provider_and_reset_forgets_them_and_control_changes(fake_clients):
    send_text("firetext")
    send_text("mmg")
    fake_clients.control(provider="firetext", down=True)

    assert [r["provider"] for r in fake_clients.requests()] == ["firetext", "mmg"]
    assert [r["provider"] for r in fake_clients.requests("mmg")] == ["mmg"]

    fake_clients.reset()

    assert fake_clients.requests() == []
    assert send_text("firetext") is None


def test_control_answers_the_behaviours_and_refuses_bad_input(fake_providers):
    answer = requests.post(
        f"{fake_providers.url}/_control", json={"provider": "mmg", "error_rate": 0.5}, timeout=5
    )
    assert answer.status_code == 200
    assert answer.json()["mmg"]["error_rate"] == 0.5
    assert answer.json()["firetext"]["error_rate"] == 0.0

    for body in ({"provider": "nexmo"}, {"error_rate": 3}, [1, 2]):
        refused = requests.post(f"{fake_providers.url}/_control", json=body, timeout=5)
        assert refused.status_code == 400
        assert refused.json()["error"]
    assert requests.get(f"{fake_providers.url}/_control", timeout=5).json() == answer.json()


def test_error_rate_answers_500_or_503(fake_providers):
    fake_providers.control(error_rate=1)

    statuses = {
        requests.post(f"{fake_providers.url}/firetext", data={"apiKey": "k"}, timeout=5).status_code
        for _ in range(20)
    }

    assert statuses == {500, 503}


def test_slow_answers_arrive_late_but_arrive(fake_clients):
    fake_clients.control(provider="mmg", slow_rate=1, slow_seconds=0.3)

    start = time.monotonic()
    assert send_text("mmg")

    assert time.monotonic() - start >= 0.3
    assert fake_clients.requests("mmg")[0]["fault"] == "slow"


def test_a_reset_is_a_tcp_reset(fake_providers):
    fake_providers.control(reset_rate=1)

    with pytest.raises(requests.ConnectionError) as caught:
        requests.post(f"{fake_providers.url}/mmg", json={}, timeout=5)

    assert "reset" in str(caught.value).lower()


def test_stop_does_not_wait_for_a_request_held_in_a_timeout(settings, monkeypatch):
    """The fake holds a timed-out request for an hour; stopping it must not wait that long. A
    generous deadline (a minute) for the stop, far below the hold, so a loaded machine can't
    fail it and a stop that waited for the hold can't pass."""
    server = FakeProviderServer(host="127.0.0.1", port=0, hang_seconds=3600, seed=1).start()
    fake = FakeProviders(server)
    fake.configure_clients(settings, monkeypatch)
    settings.PROVIDER_TIMEOUT_SECONDS = 0.1
    fake.control(down=True, mode="timeout")
    with pytest.raises(Exception):  # noqa: B017 - the client's 504, tested elsewhere
        send_text("firetext")
    assert [r["fault"] for r in fake.requests()] == ["timeout"]  # held in the fake now
    fake.close()

    stopping = threading.Thread(target=server.stop, daemon=True)
    stopping.start()
    stopping.join(timeout=60)

    waited = stopping.is_alive()
    server.stopping.set()  # when it waited: let it end now, not in an hour
    assert not waited, "stop() waited for the request held in a timeout"
