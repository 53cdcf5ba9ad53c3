"""The SSRF guard at send time: the host is resolved again, each address checked, and the
socket connects to the checked address; redirects are never followed."""

import pytest
from django.core import checks

from tests.webhooks.conftest import Answer, Receiver, final_event, send
from webhooks import guard
from webhooks.models import CallbackState
from webhooks.services import service_callback_set

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.9.8.7", "169.254.169.254", "::1", "::ffff:127.0.0.1"]
)
def test_a_dns_answer_that_changes_to_an_inside_address_is_refused_at_send_time(
    service, receiver, settings, monkeypatch, address
):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = False
    answers = {"now": "93.184.216.34"}
    monkeypatch.setattr(guard, "resolve", lambda host, port: [answers["now"]])
    service_callback_set(
        service=service, url=f"https://rebind.example:{receiver.port}/cb", bearer_token="t" * 12
    )
    event = final_event(service)
    answers["now"] = address  # the attacker's DNS answers differently now

    assert send(event) == CallbackState.GIVEN_UP
    attempt = event.attempt_rows.get()
    assert attempt.error == f"refused: address not allowed: {address.removeprefix('::ffff:')}"
    assert attempt.status_code is None
    assert receiver.received == []


def test_the_socket_connects_to_the_address_that_was_checked(
    service, receiver, insecure, monkeypatch
):
    """The name below does not resolve anywhere: the POST still reaches the receiver because
    the connection is made to the address our resolver gave, not to a second lookup."""
    monkeypatch.setattr(guard, "resolve", lambda host, port: ["127.0.0.1"])
    service_callback_set(
        service=service, url=f"http://callbacks.invalid:{receiver.port}/cb", bearer_token="t" * 12
    )
    assert send(final_event(service)) == CallbackState.DELIVERED
    (request,) = receiver.received
    assert request.headers["host"] == f"callbacks.invalid:{receiver.port}"


def test_a_redirect_to_loopback_is_not_followed(service, callback, receiver):
    inside = Receiver()
    try:
        receiver.answer(Answer(307, headers={"Location": inside.url}))
        event = final_event(service)
        assert send(event) == CallbackState.RETRYING  # retried later, here, never followed
        assert event.attempt_rows.get().status_code == 307
        assert len(receiver.received) == 1
        assert inside.received == []
    finally:
        inside.stop()


def test_a_plain_http_url_is_refused_at_send_time_once_insecure_is_off(
    service, callback, receiver, settings
):
    event = final_event(service)
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = False
    assert send(event) == CallbackState.GIVEN_UP
    assert event.attempt_rows.get().error == "refused: must be an https:// URL"
    assert receiver.received == []


@pytest.mark.parametrize(
    ("insecure", "debug", "warned"),
    [(True, False, True), (True, True, False), (False, False, False)],
)
def test_the_system_check_warns_when_insecure_is_on_without_debug(
    settings, insecure, debug, warned
):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = insecure
    settings.DEBUG = debug
    ids = [m.id for m in checks.run_checks()]
    assert ("webhooks.W001" in ids) is warned
