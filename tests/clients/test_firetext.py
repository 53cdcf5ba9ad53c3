"""Firetext client: the exact request it sends and every kind of answer it can get."""

import itertools

import pytest
import requests
import responses
from responses import matchers

from sending.clients import base, sms_client
from sending.clients.exceptions import ClientException, SmsClientResponseException
from tests.clients.conftest import fixture_text

URL = "https://firetext.test/api/sendsms/json"
REFERENCE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
def firetext(settings):
    settings.FIRETEXT_URL = URL
    settings.FIRETEXT_API_KEY = "uk-key"
    settings.FIRETEXT_INTERNATIONAL_API_KEY = "world-key"
    settings.FIRETEXT_RECEIPT_URL = None
    settings.SMS_SENDER = "NOTIFY"
    settings.PROVIDER_TIMEOUT_SECONDS = 7.5
    return lambda: sms_client("firetext")


def send(client, to="447700900123", international=False):
    return client.send_sms(
        to=to, content="Hello there", reference=REFERENCE, international=international
    )


def success(form_matcher):
    responses.post(
        URL,
        body=fixture_text("firetext", "send-success.json"),
        content_type="application/json",
        match=[matchers.request_kwargs_matcher({"timeout": (7.5, 7.5)}), form_matcher],
    )


@responses.activate
def test_sends_the_form_fields_with_the_timeout_and_returns_no_reference(firetext):
    success(
        matchers.urlencoded_params_matcher(
            {
                "apiKey": "uk-key",
                "from": "NOTIFY",
                "to": "447700900123",
                "message": "Hello there",
                "reference": REFERENCE,
            }
        )
    )

    assert send(firetext()) is None
    assert responses.calls[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"


@responses.activate
def test_international_numbers_use_the_international_key(firetext):
    success(
        matchers.urlencoded_params_matcher(
            {
                "apiKey": "world-key",
                "from": "NOTIFY",
                "to": "14155550123",
                "message": "Hello there",
                "reference": REFERENCE,
            }
        )
    )

    assert send(firetext(), to="14155550123", international=True) is None


@responses.activate
def test_the_receipt_url_is_sent_when_set(firetext, settings):
    settings.FIRETEXT_RECEIPT_URL = "https://notify.test/notifications/sms/firetext"
    success(
        matchers.urlencoded_params_matcher(
            {
                "apiKey": "uk-key",
                "from": "NOTIFY",
                "to": "447700900123",
                "message": "Hello there",
                "reference": REFERENCE,
                "receipt": "https://notify.test/notifications/sms/firetext",
            }
        )
    )

    assert send(firetext()) is None


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, fixture_text("firetext", "send-invalid-api-key.json"), "json", "Invalid apiKey"),
        (200, '{"code": 7}', "json", "code 7"),
        (502, fixture_text("firetext", "send-502.html"), "html", "502 Bad Gateway"),
        (500, '{"code": 0}', "json", '{"code": 0}'),
        (200, "", "json", "answer is not JSON: empty answer"),
        (200, "<html>maintenance</html>", "html", "answer is not JSON: <html>maintenance"),
        (200, '{"description": "SMS successfully queued"}', "json", "answer has no code"),
        (200, "[]", "json", "answer has no code"),
        (201, fixture_text("firetext", "send-success.json"), "json", "SMS successfully queued"),
        (302, "", "html", "empty answer"),
    ],
    ids=[
        "code-1",
        "other-code",
        "html-502",
        "500-with-code-0",
        "empty",
        "html-200",
        "no-code",
        "json-list",
        "201-not-200",
        "redirect-not-followed",
    ],
)
@responses.activate
def test_any_answer_but_code_0_with_http_200_is_our_error(
    firetext, status, body, content_type, expected
):
    content_type = "text/html" if content_type == "html" else "application/json"
    responses.post(URL, status=status, body=body, content_type=content_type)

    with pytest.raises(SmsClientResponseException) as caught:
        send(firetext())

    error = caught.value
    assert (error.provider, error.status_code) == ("firetext", status)
    assert expected in error.message
    assert str(error).startswith(f"firetext error ({status}): ")


@pytest.mark.parametrize(
    "timeout", [requests.ConnectTimeout("connect"), requests.ReadTimeout("read")]
)
@responses.activate
def test_a_timeout_is_a_504_gateway_timeout(firetext, timeout):
    responses.post(URL, body=timeout)

    with pytest.raises(SmsClientResponseException) as caught:
        send(firetext())

    assert (caught.value.status_code, caught.value.message) == (504, "Gateway timeout")
    assert caught.value.__cause__ is timeout


@responses.activate
def test_a_connection_reset_is_our_error_without_a_status(firetext):
    reset = requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
    responses.post(URL, body=reset)

    with pytest.raises(ClientException) as caught:
        send(firetext())

    assert isinstance(caught.value, SmsClientResponseException)
    assert caught.value.status_code is None
    assert "Connection reset by peer" in caught.value.message
    assert caught.value.__cause__ is reset


@responses.activate
def test_a_number_echoed_by_the_provider_is_masked_in_the_error(firetext):
    responses.post(URL, json={"code": 2, "description": "Invalid number 447700900123"})

    with pytest.raises(SmsClientResponseException) as caught:
        send(firetext())

    assert "447700900123" not in str(caught.value)
    assert caught.value.message == "Invalid number 4477******23"


@responses.activate
def test_a_failure_is_logged_as_one_warning_without_the_number(firetext, caplog, monkeypatch):
    responses.post(URL, status=503, body="busy")
    ticks = itertools.count()
    # The client's clock moves a quarter of a second each time it is read: start and end.
    monkeypatch.setattr(base.time, "perf_counter", lambda: 100 + next(ticks) * 0.25)

    with pytest.raises(SmsClientResponseException):
        send(firetext())

    [record] = [r for r in caplog.records if r.name == "sending.clients.base"]
    assert record.levelname == "WARNING"
    assert (record.provider, record.status_code, record.reference) == ("firetext", 503, REFERENCE)
    assert record.duration_ms == 250
    assert "447700900123" not in str(vars(record))
