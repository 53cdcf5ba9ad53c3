"""SES client against moto in server mode (a real HTTP endpoint), and the error kinds it maps."""

import json

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse

from sending.clients import email_client
from sending.clients.exceptions import (
    EmailClientException,
    EmailClientNonRetryableException,
    EmailClientThrottlingException,
)
from tests.clients.conftest import fixture_json

REFERENCE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def send(**overrides):
    kwargs = {
        "to": "someone@example.com",
        "subject": "Your reference",
        "body": "Hello – ça va?",
        "reference": REFERENCE,
    }
    return email_client().send_email(**{**kwargs, **overrides})


@pytest.fixture
def verified_sender(moto_ses, settings):
    ses = boto3.client("sesv2", region_name=settings.AWS_REGION)
    ses.create_email_identity(EmailIdentity=settings.SES_FROM_ADDRESS)
    return moto_ses


def test_a_send_returns_the_message_id_and_moto_has_the_message(verified_sender, settings):
    message_id = send()

    sent = requests.get(f"{verified_sender}/moto-api/data.json", timeout=5).json()
    [message] = sent["ses"]["Message"]
    assert message["id"] == message_id
    assert message["destinations"] == {"ToAddresses": ["someone@example.com"]}
    assert message["source"] == settings.SES_FROM_ADDRESS
    assert message["subject"] == "Your reference"
    assert message["body"] == "Hello – ça va?"


def test_an_unverified_sender_is_not_retryable(moto_ses):
    with pytest.raises(EmailClientNonRetryableException) as caught:
        send()

    assert caught.value.retryable is False
    assert caught.value.message.startswith("MessageRejected")
    assert "someone@example.com" not in str(caught.value)


@pytest.fixture
def answer_from(monkeypatch):
    """Make the email client's next calls answer from a fixture file (`canned`), for this test
    only: the handler comes off the client, which outlives the test, at the end."""
    registered = []

    def register(fixture: str) -> None:
        events = email_client().client.meta.events
        handler = canned(fixture)
        events.register("before-send.sesv2.SendEmail", handler)
        registered.append((events, handler))

    yield register
    for events, handler in registered:
        events.unregister("before-send.sesv2.SendEmail", handler)


def canned(fixture: str):
    """A before-send handler answering from a fixture file instead of making the HTTP call."""
    answer = fixture_json("ses", fixture)

    class Body:
        def stream(self, **kwargs):
            yield json.dumps(answer["body"]).encode()

    def handler(request, **kwargs):
        headers = {"Content-Type": "application/x-amz-json-1.1", **answer["headers"]}
        return AWSResponse(request.url, answer["status"], headers, Body())

    return handler


# These two answers come from a botocore `before-send` handler returning a canned AWSResponse
# (built from the fixture file), so botocore's real REST-JSON error parser reads them; moto
# can't be made to throttle or to refuse a parameter in this way.
@pytest.mark.parametrize(
    ("fixture", "kind", "status", "message"),
    [
        (
            "send-email-throttled.json",
            EmailClientThrottlingException,
            429,
            "TooManyRequestsException: Maximum sending rate exceeded.",
        ),
        (
            "send-email-bad-request.json",
            EmailClientNonRetryableException,
            400,
            "BadRequestException: Missing final '@domain'",
        ),
    ],
)
def test_throttling_and_bad_parameters_map_to_their_kinds(
    verified_sender, monkeypatch, answer_from, fixture, kind, status, message
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no back-off sleeps between retries
    answer_from(fixture)

    with pytest.raises(EmailClientException) as caught:
        send()

    assert type(caught.value) is kind
    assert (caught.value.provider, caught.value.status_code) == ("ses", status)
    assert caught.value.message == message
    assert caught.value.retryable is (kind is EmailClientThrottlingException)


def test_a_canned_success_answer_gives_its_message_id(verified_sender, answer_from):
    answer_from("send-email-success.json")

    assert send() == "0102018f6a4c3d1e-5b8e2f4a-9c7d-4e1b-a3f6-2d8c9b0e1f7a-000000"


def test_an_endpoint_that_does_not_answer_is_a_retryable_error(monkeypatch, settings):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    with pytest.raises(EmailClientException) as caught:
        send()

    assert caught.value.retryable
    assert caught.value.status_code is None
    assert caught.value.message.startswith("EndpointConnectionError")


def test_the_client_is_built_once_with_our_timeouts_and_standard_retries(settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 3.5

    client = email_client()

    assert email_client() is client
    config = client.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (3.5, 3.5)
    assert config.retries["mode"] == "standard"
    assert client.client.meta.region_name == settings.AWS_REGION
