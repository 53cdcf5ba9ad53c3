"""MMG client: the exact request it sends and every kind of answer it can get."""

import json

import pytest
import requests
import responses
from responses import matchers

from sending.clients import sms_client
from sending.clients.exceptions import SmsClientResponseException
from tests.clients.conftest import fixture_text

URL = "https://mmg.test/jsonv2a/api.php"
REFERENCE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
def mmg(settings):
    settings.MMG_URL = URL
    settings.MMG_API_KEY = "bW1nOnNlY3JldA=="
    settings.MMG_RECEIPT_URL = None
    settings.SMS_SENDER = "NOTIFY"
    settings.PROVIDER_TIMEOUT_SECONDS = 4
    return lambda: sms_client("mmg")


def send(client, to="447700900123"):
    return client.send_sms(to=to, content="Hello there", reference=REFERENCE)


def expected_body(**extra):
    return {
        "reqType": "BULK",
        "MSISDN": "447700900123",
        "msg": "Hello there",
        "sender": "NOTIFY",
        "cid": REFERENCE,
        "multi": True,
        **extra,
    }


def success(body):
    responses.post(
        URL,
        body=fixture_text("mmg", "send-success.json"),
        content_type="application/json",
        match=[
            matchers.request_kwargs_matcher({"timeout": (4, 4)}),
            matchers.header_matcher(
                {"Content-Type": "application/json", "Authorization": "Basic bW1nOnNlY3JldA=="}
            ),
            matchers.json_params_matcher(body, strict_match=True),
        ],
    )


@responses.activate
def test_sends_the_json_body_and_headers_and_returns_mmgs_reference_as_text(mmg):
    success(expected_body())

    assert send(mmg()) == "12345678"


@responses.activate
def test_the_receipt_url_is_sent_as_delurl_when_set(mmg, settings):
    settings.MMG_RECEIPT_URL = "https://notify.test/notifications/sms/mmg"
    success(expected_body(delurl="https://notify.test/notifications/sms/mmg"))

    assert send(mmg()) == "12345678"


@responses.activate
def test_non_ascii_content_arrives_intact(mmg):
    responses.post(URL, json={"Reference": 1})

    mmg().send_sms(to="447700900123", content="Café – 10 €", reference=REFERENCE)

    assert json.loads(responses.calls[0].request.body)["msg"] == "Café – 10 €"


@responses.activate
def test_a_2xx_json_answer_without_a_reference_is_still_a_success(mmg):
    responses.post(URL, status=201, json={"Status": "queued"})

    assert send(mmg()) is None


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (400, fixture_text("mmg", "send-error-206.json"), "json", "Some kind of error"),
        (400, '{"Error": 206}', "json", "error 206"),
        (401, "", "json", "empty answer"),
        (500, "<html><h1>500 Internal Server Error</h1></html>", "html", "500 Internal Server"),
        (503, '{"unexpected": true}', "json", '{"unexpected": true}'),
        (200, "", "json", "answer is not JSON: empty answer"),
        (200, '{"Refer', "json", 'answer is not JSON: {"Refer'),
        (200, '{"Error": 5, "Description": "Invalid sender"}', "json", "Invalid sender"),
        (200, "[12345678]", "json", "[12345678]"),
        (302, '{"Reference": 1}', "json", '{"Reference": 1}'),
    ],
    ids=[
        "400-error-206",
        "400-code-only",
        "401-empty",
        "500-html",
        "503-json",
        "200-empty",
        "200-truncated",
        "200-with-error",
        "200-json-list",
        "redirect-not-followed",
    ],
)
@responses.activate
def test_any_non_2xx_or_unreadable_answer_is_our_error(mmg, status, body, content_type, expected):
    content_type = "text/html" if content_type == "html" else "application/json"
    responses.post(URL, status=status, body=body, content_type=content_type)

    with pytest.raises(SmsClientResponseException) as caught:
        send(mmg())

    assert (caught.value.provider, caught.value.status_code) == ("mmg", status)
    assert expected in caught.value.message


@pytest.mark.parametrize(
    "timeout", [requests.ConnectTimeout("connect"), requests.ReadTimeout("read")]
)
@responses.activate
def test_a_timeout_is_a_504_gateway_timeout(mmg, timeout):
    responses.post(URL, body=timeout)

    with pytest.raises(SmsClientResponseException) as caught:
        send(mmg())

    assert (caught.value.status_code, caught.value.message) == (504, "Gateway timeout")
    assert caught.value.__cause__ is timeout


@responses.activate
def test_a_connection_reset_is_our_error(mmg):
    responses.post(URL, body=requests.ConnectionError(ConnectionResetError(104, "reset")))

    with pytest.raises(SmsClientResponseException) as caught:
        send(mmg())

    assert caught.value.status_code is None
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
