"""Received texts (contract section 6): Firetext's and MMG's formats from the fixture files, each
stored raw and once, matched to the service whose inbound number it was sent to."""

import base64
import threading
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection
from django.utils import timezone

from receipts.models import InboundNumber, Receipt, ReceiptState, ReceivedText
from sending.models import Service
from tests.conftest import FIXTURES
from tests.receipts.conftest import post

FIRETEXT = ("/notifications/sms/receive/firetext", "application/x-www-form-urlencoded")
MMG = ("/notifications/sms/receive/mmg", "application/json")
OK = (200, {"status": "ok"})


def fixture(provider: str, name: str) -> str:
    return (FIXTURES / f"{provider}_inbound" / name).read_text()


def received(endpoint) -> str:
    """A well-formed text in the endpoint's provider's format."""
    if endpoint is FIRETEXT:
        return fixture("firetext", "received.txt")
    return fixture("mmg", "received.json")


def answer(response) -> tuple[int, dict]:
    return response.status_code, response.json()


@pytest.fixture
def council(db) -> Service:
    service = Service.objects.create(name="Council")
    call_command("set_inbound_number", "Council", "447700900500", stdout=open("/dev/null", "w"))
    return service


@pytest.fixture
def short_code(db) -> Service:
    service = Service.objects.create(name="Short code service")
    call_command("set_inbound_number", str(service.id), "40604", stdout=open("/dev/null", "w"))
    return service


def test_a_firetext_text_is_stored_for_the_service_with_that_number(council):
    response = post(FIRETEXT, fixture("firetext", "received.txt"))

    assert answer(response) == OK
    [text] = ReceivedText.objects.all()
    assert text.service == council
    assert (text.user_number, text.notify_number) == ("447700900123", "07700900500")
    assert text.content == "Hello from a resident!"
    assert text.provider == "firetext" and text.provider_reference == ""
    assert text.provider_date == datetime(2017, 5, 21, 11, 56, 11, tzinfo=UTC)  # taken as UTC
    [raw] = Receipt.objects.all()
    assert (raw.provider, raw.state) == ("firetext-inbound", ReceiptState.PROCESSED)
    assert raw.body == fixture("firetext", "received.txt")
    assert text.receipt == raw


def test_a_sender_that_is_not_a_uk_mobile_is_kept_as_given_and_a_short_code_is_a_number(
    short_code,
):
    response = post(FIRETEXT, fixture("firetext", "short_code_landline_sender.txt"))

    assert answer(response) == OK
    text = ReceivedText.objects.get()
    assert text.service == short_code
    assert (text.user_number, text.notify_number) == ("01632 960 001", "40604")


def test_an_mmg_text_is_decoded_as_mmg_encodes_it(short_code):
    response = post(MMG, fixture("mmg", "received.json"))

    assert answer(response) == OK
    text = ReceivedText.objects.get()
    assert text.service == short_code
    assert text.content == "Hello from a resident! 📩 x + y"
    assert (text.user_number, text.notify_number) == ("447700900123", "40604")
    assert (text.provider, text.provider_reference) == ("mmg", "SOME-MMG-SPECIFIC-ID")
    assert text.provider_date == datetime(2017, 5, 21, 11, 56, 11, tzinfo=UTC)


def test_mmg_backslash_escapes_are_read_as_the_characters_they_stand_for(council):
    assert answer(post(MMG, fixture("mmg", "escaped_newline.json"))) == OK

    text = ReceivedText.objects.get()
    assert text.service == council  # 447700900500 and 07700900500 are one number
    assert text.user_number == "447700900123"
    assert text.content == "line one\nline two 'quoted' C:\\path"


def test_a_repeated_mmg_id_is_answered_ok_and_changes_nothing(short_code):
    first = post(MMG, fixture("mmg", "received.json"))
    again = post(MMG, fixture("mmg", "received.json"))

    assert answer(first) == answer(again) == OK
    assert ReceivedText.objects.count() == 1
    # Both posts are kept raw; the second says it changed nothing.
    outcomes = list(Receipt.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["received text stored", "received text already stored: changed nothing"]


def test_firetext_sends_no_id_so_the_same_text_twice_is_two_texts(council):
    post(FIRETEXT, fixture("firetext", "received.txt"))
    post(FIRETEXT, fixture("firetext", "received.txt"))

    assert ReceivedText.objects.filter(service=council).count() == 2


@pytest.mark.parametrize("endpoint", [FIRETEXT, MMG], ids=["firetext", "mmg"])
def test_a_number_no_service_has_is_stored_unmatched_and_answered_ok(db, endpoint):
    body = fixture(
        *(("firetext", "received.txt") if endpoint is FIRETEXT else ("mmg", "received.json"))
    )

    assert answer(post(endpoint, body)) == OK
    text = ReceivedText.objects.get()
    assert text.service is None
    assert Receipt.objects.get().outcome == "received text stored: no service has this number"


def test_a_time_that_does_not_parse_is_the_time_it_came(council):
    before = timezone.now()
    assert answer(post(FIRETEXT, fixture("firetext", "time_not_a_time.txt"))) == OK
    assert answer(post(MMG, fixture("mmg", "date_not_a_time.json"))) == OK

    for text in ReceivedText.objects.all():
        assert before <= text.provider_date <= timezone.now()


@pytest.mark.parametrize(
    "endpoint, name, messages",
    [
        (FIRETEXT, "missing_source.txt", ["Firetext callback failed: source missing"]),
        (FIRETEXT, "missing_destination.txt", ["Firetext callback failed: destination missing"]),
        (FIRETEXT, "missing_message.txt", ["Firetext callback failed: message missing"]),
        (
            FIRETEXT,
            "json_body.json",
            ["Firetext callback failed: body is not form-encoded"],
        ),
        (MMG, "missing_id.json", ["MMG callback failed: ID missing"]),
        (
            MMG,
            "missing_msisdn_and_number.json",
            ["MMG callback failed: MSISDN missing", "MMG callback failed: Number missing"],
        ),
        (MMG, "missing_message.json", ["MMG callback failed: Message missing"]),
        (MMG, "message_not_text.json", ["MMG callback failed: Message must be a string"]),
        (MMG, "truncated_json.txt", ["MMG callback failed: invalid json"]),
    ],
)
def test_a_body_that_cannot_be_used_is_400_naming_the_field_and_kept_rejected(
    council, endpoint, name, messages
):
    provider = "firetext" if endpoint is FIRETEXT else "mmg"

    response = post(endpoint, fixture(provider, name))

    assert answer(response) == (400, {"result": "error", "message": messages})
    assert not ReceivedText.objects.exists()
    raw = Receipt.objects.get()
    assert (raw.provider, raw.state) == (f"{provider}-inbound", ReceiptState.REJECTED)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("endpoint", [FIRETEXT, MMG], ids=["firetext", "mmg"])
def test_the_receipts_basic_auth_applies(council, settings, endpoint):
    settings.CALLBACK_BASIC_AUTH = [("notify", "inbound-secret")]
    body = fixture(
        *(("firetext", "received.txt") if endpoint is FIRETEXT else ("mmg", "received.json"))
    )

    refused = post(endpoint, body, HTTP_AUTHORIZATION=basic("notify", "wrong"))
    missing = post(endpoint, body)
    accepted = post(endpoint, body, HTTP_AUTHORIZATION=basic("notify", "inbound-secret"))

    assert refused.status_code == missing.status_code == 401
    assert answer(accepted) == OK
    assert ReceivedText.objects.count() == 1


def test_set_inbound_number_keeps_a_leading_44_as_0_and_one_service_per_number(council):
    other = Service.objects.create(name="Other")
    with pytest.raises(CommandError, match="07700900500 is already the inbound number"):
        call_command("set_inbound_number", "Other", "07700900500")
    with pytest.raises(CommandError, match="no service"):
        call_command("set_inbound_number", "Nobody", "07700900501")

    call_command("set_inbound_number", "Council", "40604", stdout=open("/dev/null", "w"))
    call_command("set_inbound_number", "Other", "447700900500", stdout=open("/dev/null", "w"))

    numbers = dict(InboundNumber.objects.values_list("service__name", "number"))
    assert numbers == {"Council": "40604", "Other": "07700900500"}
    assert other.inbound_number.number == "07700900500"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_mmg_id_posted_at_once_is_stored_once():
    if connection.vendor != "postgresql":
        pytest.skip("a race needs PostgreSQL's concurrent transactions")
    body = fixture("mmg", "received.json")
    answers, start = [], threading.Barrier(4)

    def one() -> None:
        try:
            start.wait()
            answers.append(answer(post(MMG, body)))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [OK] * 4
    assert ReceivedText.objects.count() == 1
    assert Receipt.objects.filter(provider="mmg-inbound").count() == 4
