"""GOV.UK Notify's simulated recipients on /v2 (contract section 11): answered in full, with any
key, but nothing is stored, sent or counted."""

import pytest
import requests
from notifications_python_client import authentication
from notifications_python_client.errors import HTTPError

from sending.models import IdempotencyKey, Notification
from stats.models import DailyStatistics
from tests.api_v2 import schemas

pytestmark = pytest.mark.django_db(transaction=True)

SIMULATED_NUMBERS = [
    "07700900000",
    "+447700900000",
    "447700900000",
    "0044 7700 900 000",
    "07700 900111",
    "+44 7700-900-111",
    "(07700) 900222",
    "+44 7700 900222",
]
SIMULATED_EMAILS = [
    "simulate-delivered@notifications.service.gov.uk",
    "simulate-delivered-2@notifications.service.gov.uk",
    "Simulate-Delivered-3@Notifications.Service.Gov.UK",
]
PERSONALISATION = {"first name": "Ada", "code": "1"}
EMAIL_PERSONALISATION = {"month": "May", "name": "Ada", "amount": "£5"}


def assert_nothing_happened(v2, fake, answer):
    assert not Notification.objects.exists()
    assert not DailyStatistics.objects.exists()
    assert fake.requests() == []
    with pytest.raises(HTTPError) as raised:
        v2.client.get_notification_by_id(answer["id"])
    assert raised.value.status_code == 404


@pytest.mark.parametrize("number", SIMULATED_NUMBERS)
def test_a_simulated_number_is_answered_in_full_and_nothing_is_stored_sent_or_counted(
    v2, sms_template, fake, number
):
    answer = v2.client.send_sms_notification(
        number, str(sms_template.id), PERSONALISATION, reference="smoke"
    )

    schemas.assert_matches(answer, schemas.POST_SMS)
    assert answer["content"] == {"body": "Hello Ada, your code is 1.", "from_number": "NOTIFY"}
    assert answer["reference"] == "smoke"
    assert answer["uri"] == f"{v2.url}/v2/notifications/{answer['id']}"
    assert_nothing_happened(v2, fake, answer)


@pytest.mark.parametrize("address", SIMULATED_EMAILS)
def test_a_simulated_email_address_is_answered_in_full_and_nothing_is_stored_sent_or_counted(
    v2, email_template, fake, address
):
    answer = v2.client.send_email_notification(
        address, str(email_template.id), EMAIL_PERSONALISATION
    )

    schemas.assert_matches(answer, schemas.POST_EMAIL)
    assert answer["content"]["subject"] == "Your bill for May"
    assert_nothing_happened(v2, fake, answer)


def test_a_number_next_to_a_simulated_one_is_sent(v2, sms_template, fake):
    answer = v2.client.send_sms_notification("07700900001", str(sms_template.id), PERSONALISATION)
    assert Notification.objects.filter(id=answer["id"]).exists()
    assert [r["fields"]["to"] for r in fake.requests("firetext")] == ["447700900001"]


def test_a_simulated_send_is_checked_like_any_other(v2, sms_template, email_template):
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("07700900000", str(sms_template.id), {"code": "1"})
    assert raised.value.response.json()["errors"] == [
        {"error": "BadRequestError", "message": "Missing personalisation: First Name"}
    ]
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("07700900000", str(email_template.id), PERSONALISATION)
    assert raised.value.status_code == 400


def test_a_replay_under_the_same_idempotency_key_answers_the_same_simulated_id(
    v2, sms_template, fake
):
    def send() -> requests.Response:
        token = authentication.create_jwt_token(v2.key[-36:], str(v2.service.id))
        return requests.post(
            f"{v2.url}/v2/notifications/sms",
            json={"phone_number": "07700900111", "template_id": str(sms_template.id),
                  "personalisation": PERSONALISATION},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "smoke-1"},
            timeout=10,
        )  # fmt: skip

    first, again = send(), send()
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert IdempotencyKey.objects.count() == 1
    assert_nothing_happened(v2, fake, first.json())
