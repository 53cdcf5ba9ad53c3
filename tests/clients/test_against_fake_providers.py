"""Each client against the fake providers over real HTTP, including their faults."""

import pytest

from sending.clients import email_client, sms_client
from sending.clients.exceptions import EmailClientException, SmsClientResponseException
from tests.fakes import (
    FIRETEXT_API_KEY,
    FIRETEXT_INTERNATIONAL_API_KEY,
    running_fake_providers,
)

REFERENCE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def send_sms(provider, **kwargs):
    return sms_client(provider).send_sms(
        to=kwargs.get("to", "447700900123"),
        content="Hello there",
        reference=REFERENCE,
        international=kwargs.get("international", False),
    )


def test_firetext_send_reaches_the_fake_as_a_form(fake_clients, settings):
    assert send_sms("firetext") is None
    assert send_sms("firetext", to="14155550123", international=True) is None

    uk, world = fake_clients.requests("firetext")
    assert uk["fields"] == {
        "apiKey": FIRETEXT_API_KEY,
        "from": settings.SMS_SENDER,
        "to": "447700900123",
        "message": "Hello there",
        "reference": REFERENCE,
    }
    assert (uk["status"], uk["reference"]) == (200, REFERENCE)
    assert world["fields"]["apiKey"] == FIRETEXT_INTERNATIONAL_API_KEY


def test_mmg_send_returns_the_reference_the_fake_gave(fake_clients, settings):
    reference = send_sms("mmg")

    [received] = fake_clients.requests("mmg")
    assert reference == received["provider_reference"]
    assert reference.isdigit()
    assert received["fields"] == {
        "reqType": "BULK",
        "MSISDN": "447700900123",
        "msg": "Hello there",
        "sender": settings.SMS_SENDER,
        "cid": REFERENCE,
        "multi": True,
    }


def test_ses_send_returns_the_message_id_the_fake_gave(fake_clients, settings):
    message_id = email_client().send_email(
        to="someone@example.com", subject="Hi", body="Hello there", reference=REFERENCE
    )

    [received] = fake_clients.requests("ses")
    assert message_id == received["provider_reference"]
    assert received["fields"] == {
        "FromEmailAddress": settings.SES_FROM_ADDRESS,
        "Destination": {"ToAddresses": ["someone@example.com"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "Hi", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": "Hello there", "Charset": "UTF-8"}},
            }
        },
    }


def test_a_provider_that_is_down_fails_while_the_other_still_sends(fake_clients):
    fake_clients.control(provider="firetext", down=True)

    with pytest.raises(SmsClientResponseException) as caught:
        send_sms("firetext")
    assert (caught.value.status_code, caught.value.provider) == (503, "firetext")
    assert "Service Unavailable" in caught.value.message
    assert send_sms("mmg")

    fake_clients.control(provider="firetext", down=False)
    assert send_sms("firetext") is None


@pytest.mark.parametrize("provider", ["firetext", "mmg"])
def test_a_provider_that_hangs_is_a_504_after_the_timeout(fake_clients, settings, provider):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.2
    fake_clients.control(provider=provider, down=True, mode="timeout")

    with pytest.raises(SmsClientResponseException) as caught:
        send_sms(provider)

    assert (caught.value.status_code, caught.value.message) == (504, "Gateway timeout")
    assert [r["fault"] for r in fake_clients.requests(provider)] == ["timeout"]


@pytest.mark.parametrize("provider", ["firetext", "mmg"])
def test_a_connection_reset_is_our_error(fake_clients, provider):
    fake_clients.control(provider=provider, reset_rate=1)

    with pytest.raises(SmsClientResponseException) as caught:
        send_sms(provider)

    assert caught.value.status_code is None
    assert "Connection" in caught.value.message


@pytest.mark.parametrize("provider", ["firetext", "mmg"])
def test_every_malformed_answer_is_our_error(fake_clients, provider):
    fake_clients.control(provider=provider, malformed_rate=1)

    for _ in range(8):
        with pytest.raises(SmsClientResponseException):
            send_sms(provider)


def test_a_key_the_provider_does_not_know_is_refused(settings, monkeypatch):
    keys = {"firetext": frozenset({"right"}), "mmg": frozenset({"right"})}
    with running_fake_providers(api_keys=keys) as fake:
        fake.configure_clients(settings, monkeypatch)

        with pytest.raises(SmsClientResponseException) as firetext:
            send_sms("firetext")
        with pytest.raises(SmsClientResponseException) as mmg:
            send_sms("mmg")

    assert (firetext.value.status_code, firetext.value.message) == (200, "Invalid apiKey")
    assert (mmg.value.status_code, mmg.value.message) == (401, "Authentication failed")


def test_ses_through_a_down_fake_is_retried_by_botocore_then_a_retryable_error(fake_clients):
    fake_clients.control(provider="ses", down=True)

    with pytest.raises(EmailClientException) as caught:
        email_client().send_email(to="a@example.com", subject="s", body="b", reference=REFERENCE)

    assert caught.value.retryable
    assert caught.value.status_code == 503
    assert caught.value.message.startswith("ServiceUnavailable")
    # botocore's standard retry mode: three attempts.
    assert len(fake_clients.requests("ses")) == 3


def test_ses_timeout_is_a_retryable_504(fake_clients, settings, monkeypatch):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.2
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    fake_clients.control(provider="ses", down=True, mode="timeout")

    with pytest.raises(EmailClientException) as caught:
        email_client().send_email(to="a@example.com", subject="s", body="b", reference=REFERENCE)

    assert (caught.value.status_code, caught.value.message) == (504, "Gateway timeout")
    assert caught.value.retryable


def test_ses_malformed_answers_are_our_error(fake_clients):
    fake_clients.control(provider="ses", malformed_rate=1)

    for _ in range(4):
        with pytest.raises(EmailClientException) as caught:
            email_client().send_email(
                to="a@example.com", subject="s", body="b", reference=REFERENCE
            )
        assert caught.value.message == "answer has no MessageId"


def test_ses_endpoint_can_also_come_from_aws_endpoint_url_ses(fake_clients, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_SESV2")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SES", fake_clients.url)

    assert email_client().send_email(to="a@example.com", subject="s", body="b", reference="r")
    assert len(fake_clients.requests("ses")) == 1
