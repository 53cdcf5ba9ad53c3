"""`sms_client(name)` and `email_client()`: one client per process, built from settings."""

import pytest

from sending.clients import email_client, sms_client
from sending.clients.exceptions import ClientException


@pytest.mark.parametrize("name", ["firetext", "mmg"])
def test_one_client_per_name_from_the_settings_of_the_moment(settings, name):
    settings.FIRETEXT_URL = "https://one.test/firetext"
    settings.MMG_URL = "https://one.test/mmg"
    client = sms_client(name)

    assert sms_client(name) is client
    assert client.name == name
    assert client.url == f"https://one.test/{name}"

    settings.FIRETEXT_URL = "https://two.test/firetext"
    settings.MMG_URL = "https://two.test/mmg"
    assert sms_client(name).url == f"https://two.test/{name}"


@pytest.mark.parametrize("error", [KeyError, ValueError])
def test_an_unknown_name_is_a_lookup_mistake_not_a_provider_failure(error):
    with pytest.raises(error) as caught:
        sms_client("nexmo")

    assert not isinstance(caught.value, ClientException)
    assert str(caught.value) == "no SMS client named 'nexmo'"


def test_one_email_client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    assert email_client() is email_client()
    assert email_client().name == "ses"


def test_the_email_client_is_made_again_when_its_settings_or_aws_variables_change(
    settings, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", "http://127.0.0.1:1")
    first = email_client()
    assert first.client.meta.endpoint_url == "http://127.0.0.1:1"

    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", "http://127.0.0.1:2")
    second = email_client()
    assert second is not first and second.client.meta.endpoint_url == "http://127.0.0.1:2"

    settings.SES_FROM_ADDRESS = "other@example.com"
    assert email_client().from_address == "other@example.com"
