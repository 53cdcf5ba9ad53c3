"""Key types through GOV.UK Notify's official Python client, unchanged, on a real server: a team
key refused off the guest list, a test key's text and email simulated (the fake providers hear
nothing; the service's callback receiver hears the outcome), and each key listing its own."""

import json

import pytest
from notifications_python_client.errors import HTTPError

from sending.guest_list import guest_list_add
from sending.models import ApiKey, KeyType, Notification
from stats.models import DailyStatistics
from tests.api_v2.conftest import poll
from tests.api_v2.test_official_client import error_of
from tests.webhooks.conftest import BEARER_TOKEN, Receiver
from webhooks.services import service_callback_set

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver(v2, settings):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    server = Receiver()
    service_callback_set(service=v2.service, url=server.url, bearer_token=BEARER_TOKEN)
    yield server
    server.stop()


def client_of(v2, key_type: str):
    _, key = ApiKey.issue(v2.service, name=f"{key_type} key", key_type=key_type)
    return v2.client_for(key)


def test_a_team_key_sends_to_the_guest_list_and_refuses_anyone_else(v2, sms_template):
    guest_list_add(service=v2.service, recipient="07700 900123")
    team = client_of(v2, KeyType.TEAM)

    team.send_sms_notification(
        "+447700900123", str(sms_template.id), {"first name": "A", "code": 1}
    )
    with pytest.raises(HTTPError) as raised:
        team.send_sms_notification(
            "07700900456", str(sms_template.id), {"first name": "A", "code": 1}
        )

    assert error_of(raised) == (
        400,
        [
            {
                "error": "BadRequestError",
                "message": "Can’t send to this recipient using a team-only API key",
            }
        ],
    )
    assert Notification.objects.count() == 1


def test_a_test_key_reaches_no_provider_yet_its_outcome_is_called_back_and_listed_alone(
    v2,
    sms_template,
    email_template,
    fake,
    receiver,
):
    test = client_of(v2, KeyType.TEST)
    text = test.send_sms_notification(
        "07700900003", str(sms_template.id), {"first name": "A", "code": 1}
    )
    email = test.send_email_notification(
        "perm-fail@simulator.notify",
        str(email_template.id),
        {"month": "May", "name": "A", "amount": 1},
    )
    normal = v2.client.send_sms_notification(
        "07700900123", str(sms_template.id), {"first name": "A", "code": 1}
    )

    finals = {text["id"]: "temporary-failure", email["id"]: "permanent-failure"}
    for notification_id, final in finals.items():
        poll(
            lambda n=notification_id, f=final: test.get_notification_by_id(n)["status"] == f,
            what=f"{final} for the test key's notification",
        )
    called_back = poll(
        lambda: len(receiver.received) >= 3 and receiver.received,
        what="the status callbacks",
    )
    outcomes = {json.loads(r.body)["id"]: json.loads(r.body)["status"] for r in called_back}
    assert outcomes == {**finals, normal["id"]: "delivered"}
    # Only the normal key's text reached a provider.
    assert [r["reference"] for r in fake.requests("firetext")] == [normal["id"]]
    assert fake.requests("mmg") == [] and fake.requests("ses") == []
    listed = {n["id"] for n in test.get_all_notifications()["notifications"]}
    assert listed == set(finals)
    assert {n["id"] for n in v2.client.get_all_notifications()["notifications"]} == {normal["id"]}
    stats = DailyStatistics.objects.get(service=v2.service)
    assert (stats.sms_requested, stats.emails_requested, stats.emails_failed) == (1, 0, 0)
