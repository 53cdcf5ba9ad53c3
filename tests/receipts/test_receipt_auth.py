"""Basic auth on every receipt endpoint (CALLBACK_BASIC_AUTH, and each SMS provider's own:
FIRETEXT_RECEIPT_AUTH, MMG_RECEIPT_AUTH), and the warning while any endpoint is open."""

import base64

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from receipts.checks import callback_basic_auth_check
from receipts.models import Receipt
from sending.models import Notification, NotificationStatus
from tests.receipts.conftest import FIRETEXT, MMG, REFERENCE, SES, fixture_text, post
from tests.stats.factories import notification_make

BODIES = {
    FIRETEXT: lambda: fixture_text("firetext", "delivered.txt"),
    MMG: lambda: fixture_text("mmg", "delivered.json"),
    SES: lambda: fixture_text("ses", "sns_unsubscribe_confirmation.json"),
}
ENDPOINTS = pytest.mark.parametrize("endpoint", list(BODIES), ids=["firetext", "mmg", "ses"])


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def credentials(settings):
    settings.CALLBACK_BASIC_AUTH = [("notify", "old-secret"), ("notify", "new-secret")]


@ENDPOINTS
@pytest.mark.parametrize("password", ["old-secret", "new-secret"])
def test_any_configured_pair_is_accepted(service, credentials, endpoint, password):
    notification_make(service=service, notification_id=REFERENCE)

    response = post(endpoint, BODIES[endpoint](), HTTP_AUTHORIZATION=basic("notify", password))

    assert (response.status_code, response.json()) == (200, {"result": "success"})


@ENDPOINTS
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("notify", "wrong"),
        basic("someone", "old-secret"),
        basic("notify", "old-secret-and-more"),
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer old-secret",
    ],
    ids=[
        "none",
        "wrong password",
        "wrong user",
        "longer password",
        "garbage",
        "no colon",
        "bearer",
    ],
)
def test_anything_else_is_challenged_and_nothing_is_stored(
    service, credentials, endpoint, authorization
):
    notification_make(service=service, notification_id=REFERENCE)
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = post(endpoint, BODIES[endpoint](), **extra)

    assert response.status_code == 401
    # SNS sends its credentials only after this challenge.
    assert response["WWW-Authenticate"] == 'Basic realm="notify receipts"'
    assert response.json()["result"] == "error"
    assert not Receipt.objects.exists()
    assert Notification.objects.get().status == NotificationStatus.SENDING


def test_the_system_check_warns_when_basic_auth_is_off(settings):
    settings.CALLBACK_BASIC_AUTH = []
    [warning] = callback_basic_auth_check(None)
    assert warning.id == "callbacks.W001"

    with pytest.raises(SystemCheckError, match="CALLBACK_BASIC_AUTH is not set"):
        call_command("check", fail_level="WARNING")


def test_the_system_check_is_quiet_when_basic_auth_is_on(credentials):
    assert callback_basic_auth_check(None) == []


# --- each SMS provider's own credentials (FIRETEXT_RECEIPT_AUTH, MMG_RECEIPT_AUTH) -------------

SHARED = ("notify", "shared-secret")
FIRETEXT_PAIR = ("firetext", "firetext-secret")
MMG_PAIR = ("mmg", "mmg-secret")
ANSWERS = {  # endpoint → the pair posted with → the answer
    FIRETEXT: {FIRETEXT_PAIR: 200, MMG_PAIR: 401, SHARED: 401},
    MMG: {FIRETEXT_PAIR: 401, MMG_PAIR: 200, SHARED: 401},
    SES: {FIRETEXT_PAIR: 401, MMG_PAIR: 401, SHARED: 200},
}


@ENDPOINTS
@pytest.mark.parametrize("pair", list(ANSWERS[SES]), ids=["firetext", "mmg", "shared"])
def test_with_its_own_credentials_set_a_provider_endpoint_takes_only_those(
    service, settings, endpoint, pair
):
    settings.CALLBACK_BASIC_AUTH = [SHARED]
    settings.FIRETEXT_RECEIPT_AUTH = [FIRETEXT_PAIR]
    settings.MMG_RECEIPT_AUTH = [("mmg", "old-mmg-secret"), MMG_PAIR]
    notification_make(service=service, notification_id=REFERENCE, called=("firetext", "mmg"))

    response = post(endpoint, BODIES[endpoint](), HTTP_AUTHORIZATION=basic(*pair))

    assert response.status_code == ANSWERS[endpoint][pair]
    assert Receipt.objects.exists() is (response.status_code == 200)
    delivered = Notification.objects.get().status == NotificationStatus.DELIVERED
    assert delivered is (response.status_code == 200 and endpoint != SES)


def test_a_provider_without_its_own_credentials_falls_back_to_the_shared_ones(service, settings):
    settings.CALLBACK_BASIC_AUTH = [SHARED]
    settings.MMG_RECEIPT_AUTH = [MMG_PAIR]
    notification_make(service=service, notification_id=REFERENCE, called="firetext")
    body = BODIES[FIRETEXT]()

    assert post(FIRETEXT, body, HTTP_AUTHORIZATION=basic(*MMG_PAIR)).status_code == 401
    assert post(FIRETEXT, body, HTTP_AUTHORIZATION=basic(*SHARED)).status_code == 200
    assert Notification.objects.get().status == NotificationStatus.DELIVERED


def test_the_system_check_names_the_endpoints_still_open(settings):
    settings.CALLBACK_BASIC_AUTH = []
    settings.FIRETEXT_RECEIPT_AUTH = [FIRETEXT_PAIR]
    settings.MMG_RECEIPT_AUTH = [MMG_PAIR]

    [warning] = callback_basic_auth_check(None)

    assert "the ses receipt endpoints accept receipts from anyone" in warning.msg
