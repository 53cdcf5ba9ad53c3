"""The inbound callback (contract section 10): received texts sent to the service's own
endpoint (its URL, token and signing secret, apart from its status callback), signed, retried
and recorded like status callbacks, by the same outbox and drain."""

import json

import pytest
from django.core.management import call_command
from django.test import Client
from standardwebhooks.webhooks import Webhook

from receipts.models import ReceivedText
from tests.conftest import FIXTURES
from tests.receipts.conftest import inbox_drain
from tests.webhooks.conftest import Answer, final_event
from webhooks import delivery, guard
from webhooks.models import CallbackAttempt, CallbackEvent, CallbackState, ServiceInboundCallback
from webhooks.services import service_callback_delete, service_callback_set

pytestmark = pytest.mark.django_db

INBOUND_TOKEN = "inbound-callback-token-99"
MMG_TEXT = (FIXTURES / "mmg_inbound" / "received.json").read_text()


@pytest.fixture
def inbound(service, receiver, insecure):
    """The service has the short code 40604 and an inbound callback to the receiver."""
    call_command("set_inbound_number", str(service.id), "40604", stdout=open("/dev/null", "w"))
    made, secret = service_callback_set(
        service=service,
        url=receiver.url + "/inbound",
        bearer_token=INBOUND_TOKEN,
        model=ServiceInboundCallback,
    )
    return secret


def receive_mmg(body: str = MMG_TEXT):
    response = Client().post(
        "/notifications/sms/receive/mmg", body, content_type="application/json"
    )
    assert response.status_code == 200
    inbox_drain()  # what the inbox drain's worker does once the text is stored
    return response


def drain(service) -> int:
    return delivery.callbacks_drain(service_id=service.id)


def test_a_received_text_is_posted_signed_to_the_inbound_callback(service, inbound, receiver):
    receive_mmg()
    text = ReceivedText.objects.get()
    event = CallbackEvent.objects.get()
    assert (event.kind, event.received_text_id, event.notification_id) == ("inbound", text.id, None)

    assert drain(service) == 1

    (request,) = receiver.received
    assert request.path == "/callbacks/notify/inbound"
    assert request.headers["authorization"] == f"Bearer {INBOUND_TOKEN}"
    assert request.headers["webhook-id"] == str(event.id)
    body = json.loads(request.body)
    assert body == {
        "id": str(text.id),
        "source_number": "447700900123",
        "destination_number": "40604",
        "message": "Hello from a resident! 📩 x + y",
        "date_received": "2017-05-21T11:56:11.000000Z",
    }
    # Any Standard Webhooks library verifies it with the inbound callback's own secret.
    assert Webhook(inbound).verify(request.body, request.headers) == body
    event.refresh_from_db()
    assert (event.state, event.attempts) == (CallbackState.DELIVERED, 1)
    (attempt,) = CallbackAttempt.objects.filter(event=event)
    assert (attempt.status_code, attempt.notification_id) == (200, None)


def test_a_repeated_mmg_text_makes_no_second_callback(service, inbound, receiver):
    receive_mmg()
    receive_mmg()

    assert CallbackEvent.objects.count() == 1


def test_a_failed_post_is_retried_like_a_status_callback(service, inbound, receiver, clock):
    receiver.answer(Answer(503))
    receive_mmg()

    # The drain waits for the first retry itself (10 s later on its clock), as for a status
    # callback, rather than leaving it to the sweep.
    drain(service)

    assert [r.path for r in receiver.received] == ["/callbacks/notify/inbound"] * 2
    event = CallbackEvent.objects.get()
    assert (event.state, event.attempts) == (CallbackState.DELIVERED, 2)
    first, second = event.attempt_rows.order_by("started_at")
    assert (first.status_code, second.status_code) == (503, 200)
    assert (second.started_at - first.started_at).total_seconds() >= 10


def test_status_and_inbound_events_each_go_to_their_own_endpoint(
    service, callback, inbound, receiver
):
    final_event(service)
    receive_mmg()

    assert drain(service) == 2

    paths = sorted(r.path for r in receiver.received)
    assert paths == ["/callbacks/notify", "/callbacks/notify/inbound"]
    tokens = {r.path: r.headers["authorization"] for r in receiver.received}
    assert tokens["/callbacks/notify/inbound"] == f"Bearer {INBOUND_TOKEN}"
    assert tokens["/callbacks/notify"] != tokens["/callbacks/notify/inbound"]


def test_without_an_inbound_callback_no_event_is_written(service, callback, receiver):
    call_command("set_inbound_number", str(service.id), "40604", stdout=open("/dev/null", "w"))

    receive_mmg()

    assert ReceivedText.objects.get().service == service
    assert not CallbackEvent.objects.exists()  # the status callback is not where texts go


def test_an_inbound_callback_removed_before_sending_gives_up_only_its_events(
    service, callback, inbound, receiver
):
    status_event = final_event(service)
    receive_mmg()
    service_callback_delete(service=service, model=ServiceInboundCallback)

    drain(service)

    inbound_event = CallbackEvent.objects.get(kind="inbound")
    assert inbound_event.state == CallbackState.GIVEN_UP
    assert CallbackAttempt.objects.get(event=inbound_event).error == "no callback configured"
    status_event.refresh_from_db()
    assert status_event.state == CallbackState.DELIVERED
    assert [r.path for r in receiver.received] == ["/callbacks/notify"]


@pytest.fixture
def public_dns(monkeypatch):
    monkeypatch.setattr(guard, "resolve", lambda host, port: ["93.184.216.34"])


def test_the_inbound_callback_api_is_apart_from_the_status_callback(api_client, public_dns):
    assert api_client.get("/service/inbound-callback").status_code == 404

    made = api_client.put(
        "/service/inbound-callback",
        {"url": "https://service.example/texts", "bearer_token": "a-token-of-12"},
        format="json",
    )
    assert made.status_code == 200
    assert made.json()["signing_secret"].startswith("whsec_")
    assert api_client.get("/service/callback").status_code == 404
    shown = api_client.get("/service/inbound-callback").json()
    assert set(shown) == {"url", "created_at", "updated_at"}
    assert shown["url"] == "https://service.example/texts"
    bad = api_client.put(
        "/service/inbound-callback",
        {"url": "https://service.example/x", "bearer_token": "short"},
        format="json",
    )
    assert bad.status_code == 400

    assert api_client.delete("/service/inbound-callback").status_code == 204
    assert api_client.get("/service/inbound-callback").status_code == 404
