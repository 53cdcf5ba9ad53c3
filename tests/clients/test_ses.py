"""SES client against moto in server mode (a real HTTP endpoint), and the error kinds it maps."""

import json

import boto3
import pytest
import requests

from sending.clients import email_client
from sending.clients.exceptions import (
    EmailClientException,
    EmailClientNonRetryableException,
    EmailClientThrottlingException,
)

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
    verified_sender, monkeypatch, ses_answers, fixture, kind, status, message
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no back-off sleeps between retries
    ses_answers(fixture)

    with pytest.raises(EmailClientException) as caught:
        send()

    assert type(caught.value) is kind
    assert (caught.value.provider, caught.value.status_code) == ("ses", status)
    assert caught.value.message == message
    assert caught.value.retryable is (kind is EmailClientThrottlingException)


def test_the_request_ses_receives_and_the_message_id_of_its_answer(
    verified_sender, ses_answers, settings
):
    """The request as it leaves botocore (contract section 5), and the id read from an answer
    in SES's own shape (moto's may differ)."""
    sent = []

    def record(request, **kwargs):
        sent.append(request)

    events = email_client().client.meta.events
    events.register_first("before-send.sesv2.SendEmail", record)
    ses_answers("send-email-success.json")
    try:
        message_id = send(reply_to="help@example.com", unsubscribe_url="https://example.com/u/1")
    finally:
        events.unregister("before-send.sesv2.SendEmail", record)

    assert message_id == "0102018f6a4c3d1e-5b8e2f4a-9c7d-4e1b-a3f6-2d8c9b0e1f7a-000000"
    [request] = sent
    assert (request.method, request.url.rsplit("/", 3)[1:]) == (
        "POST",
        ["v2", "email", "outbound-emails"],
    )
    assert json.loads(request.body) == {
        "FromEmailAddress": settings.SES_FROM_ADDRESS,
        "Destination": {"ToAddresses": ["someone@example.com"]},
        "ReplyToAddresses": ["help@example.com"],
        "Content": {
            "Simple": {
                "Subject": {"Data": "Your reference", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": "Hello – ça va?", "Charset": "UTF-8"}},
                "Headers": [
                    {"Name": "List-Unsubscribe", "Value": "<https://example.com/u/1>"},
                    {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
                ],
            }
        },
    }


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
