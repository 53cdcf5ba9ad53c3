"""The fake providers' callback receiver (for `make run`): it takes our callbacks, checks
their signature once told the secret, and lists them."""

import pytest
import requests

from tests.fakes import fake_providers  # noqa: F401  (fixture)
from tests.webhooks.conftest import final_event
from webhooks import delivery
from webhooks.models import CallbackState
from webhooks.services import service_callback_set

pytestmark = pytest.mark.django_db


def test_the_receiver_verifies_and_lists_what_it_gets(service, insecure, fake_providers):  # noqa: F811
    _, secret = service_callback_set(
        service=service, url=f"{fake_providers.url}/service-callback", bearer_token="t" * 12
    )
    told = requests.post(
        f"{fake_providers.url}/_callbacks", json={"signing_secret": secret}, timeout=5
    )
    assert told.json() == {"checking_signatures": True}
    event = final_event(service)

    assert delivery.callback_event_send(event_id=str(event.id)) == CallbackState.DELIVERED
    listed = requests.get(f"{fake_providers.url}/_callbacks", timeout=5).json()
    assert listed["count"] == 1
    (got,) = listed["callbacks"]
    assert (got["webhook_id"], got["signature"]) == (str(event.id), "valid")
    assert got["payload"]["status"] == "delivered"


def test_a_wrong_signature_is_refused(service, insecure, fake_providers):  # noqa: F811
    service_callback_set(
        service=service, url=f"{fake_providers.url}/service-callback", bearer_token="t" * 12
    )
    other = "whsec_" + "QUJD" * 10 + "QUI="
    requests.post(f"{fake_providers.url}/_callbacks", json={"signing_secret": other}, timeout=5)
    event = final_event(service)
    assert delivery.callback_event_send(event_id=str(event.id)) == CallbackState.GIVEN_UP
    assert event.attempt_rows.get().status_code == 401
