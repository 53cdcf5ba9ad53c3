"""GOV.UK Notify's key types on both APIs (contract section 11): a team key sends only to the
guest list, a test key to nobody (its receipt simulated through the provider's own receipt
path), and each key lists only its own type's notifications."""

import time
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from console.selectors import notification_status_counts, provider_window_counts
from receipts.models import Receipt
from sending import api_keys, failover, tasks
from sending.models import (
    ApiKey,
    GuestListRecipient,
    KeyType,
    Notification,
    SendAttempt,
    Service,
    api_key_hash,
)
from sending.templates import template_create
from stats.services import daily_statistics_rebuild
from tests.pipeline.conftest import FIRETEXT_URL, MMG_URL, prefer
from tests.stats.factories import statistics_of
from tests.webhooks.conftest import BEARER_TOKEN, Receiver
from webhooks.models import CallbackEvent
from webhooks.services import service_callback_set

pytestmark = pytest.mark.django_db

REFUSED = "Can’t send to this recipient using a team-only API key"
SMS = {"phone_number": "07700 900123", "content": "Your code is 1234"}
EMAIL = {"email_address": "someone@example.com", "subject": "Hi", "content": "Hello"}


def key_of(service: Service, key_type: str) -> str:
    _, key = ApiKey.issue(service, name=f"{key_type} key", key_type=key_type)
    return key


def section_4(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def v2(service: Service, key: str) -> APIClient:
    """A client that signs each request's token with the key's secret, as Notify's clients do."""
    client = APIClient()
    token = jwt.encode({"iss": str(service.id), "iat": int(time.time())}, key[-36:], "HS256")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def sms_template(service):
    return template_create(service=service, template_type="sms", name="Code", body="Code ((c))")


def v2_sms(service, key, template, phone_number: str):
    return v2(service, key).post(
        "/v2/notifications/sms",
        {
            "phone_number": phone_number,
            "template_id": str(template.id),
            "personalisation": {"c": 1},
        },
        format="json",
    )


def command_last_line(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


# Commands


def test_create_api_key_makes_each_type_and_normal_by_default():
    normal = command_last_line("create_api_key", "Council tax")
    team = command_last_line("create_api_key", "Council tax", "--type", "team")
    test = command_last_line("create_api_key", "Council tax", "--type", "test")
    types = {
        key: ApiKey.objects.get(key_hash=api_key_hash(key)).key_type for key in (normal, team, test)
    }
    assert types == {normal: "normal", team: "team", test: "test"}
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_api_key", "Council tax", "--type", "live", stdout=StringIO())


def test_add_to_guest_list_keeps_numbers_normalised_and_addresses_in_lower_case(service):
    call_command("add_to_guest_list", service.name, "+44 (0)7700-900 123", stdout=StringIO())
    call_command("add_to_guest_list", str(service.id), "Someone@Example.COM", stdout=StringIO())
    out = StringIO()
    call_command("add_to_guest_list", service.name, "07700900123", stdout=out)
    assert "already" in out.getvalue()
    assert "900123" not in out.getvalue()  # masked, as in logs
    assert sorted(GuestListRecipient.objects.values_list("recipient_type", "recipient")) == [
        ("email", "someone@example.com"),
        ("sms", "447700900123"),
    ]
    with pytest.raises(CommandError, match="Not a phone number or an email address"):
        call_command("add_to_guest_list", service.name, "hello", stdout=StringIO())
    with pytest.raises(CommandError, match="no service"):
        call_command("add_to_guest_list", "Nobody", "07700900123", stdout=StringIO())


# Team keys


@pytest.fixture
def guests(service):
    call_command("add_to_guest_list", service.name, "+447700900123", stdout=StringIO())
    call_command("add_to_guest_list", service.name, "Someone@Example.com", stdout=StringIO())


@pytest.mark.parametrize("phone_number", ["07700 900123", "+44 7700 900123", "(0)7700-900-123"])
def test_a_team_key_sends_to_a_guest_however_the_number_is_written(service, guests, phone_number):
    client = section_4(key_of(service, KeyType.TEAM))
    answer = client.post("/notifications/sms", {**SMS, "phone_number": phone_number}, format="json")
    assert answer.status_code == 201
    assert Notification.objects.get().key_type == "team"


def test_a_team_key_matches_email_addresses_without_regard_to_case(service, guests):
    client = section_4(key_of(service, KeyType.TEAM))
    email = {**EMAIL, "email_address": "SOMEONE@example.com"}
    assert client.post("/notifications/email", email, format="json").status_code == 201


def test_a_team_key_refuses_anyone_off_the_guest_list_on_section_4(service, guests):
    client = section_4(key_of(service, KeyType.TEAM))
    stranger = {**SMS, "phone_number": "07700 900456"}
    answer = client.post("/notifications/sms", stranger, format="json")
    assert answer.status_code == 400
    assert answer.json() == {
        "status_code": 400,
        "errors": [{"error": "BadRequestError", "message": f"phone_number {REFUSED}"}],
    }
    email = client.post(
        "/notifications/email", {**EMAIL, "email_address": "other@example.com"}, format="json"
    )
    assert email.json()["errors"][0]["message"] == f"email_address {REFUSED}"
    assert not Notification.objects.exists()


def test_a_team_keys_batch_with_one_stranger_is_refused_whole_naming_it(service, guests):
    client = section_4(key_of(service, KeyType.TEAM))
    batch = {"notifications": [SMS, {**SMS, "phone_number": "07700900456"}, SMS]}
    answer = client.post("/notifications/sms/batch", batch, format="json")
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"error": "BadRequestError", "message": f"notifications[1].phone_number {REFUSED}"}
    ]
    assert not Notification.objects.exists()


def test_a_team_key_refuses_a_stranger_on_v2_in_notifys_shape(service, guests, sms_template):
    key = key_of(service, KeyType.TEAM)
    assert v2_sms(service, key, sms_template, "+447700900123").status_code == 201
    answer = v2_sms(service, key, sms_template, "07700900456")
    assert answer.status_code == 400
    assert answer.json() == {
        "status_code": 400,
        "errors": [{"error": "BadRequestError", "message": REFUSED}],
    }
    assert Notification.objects.count() == 1


def test_normal_and_test_keys_send_to_anyone(service, sms_template):
    for key_type in (KeyType.NORMAL, KeyType.TEST):
        key = key_of(service, key_type)
        assert section_4(key).post("/notifications/sms", SMS, format="json").status_code == 201
        assert v2_sms(service, key, sms_template, "07700900456").status_code == 201


def test_an_idempotency_key_used_by_a_test_key_is_never_replayed_to_a_live_key(service):
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-1"}
    test = section_4(key_of(service, KeyType.TEST))
    assert test.post("/notifications/sms", SMS, format="json", **headers).status_code == 201
    live = section_4(key_of(service, KeyType.NORMAL))
    answer = live.post("/notifications/sms", SMS, format="json", **headers)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["error"] == "IdempotencyError"
    assert list(Notification.objects.values_list("key_type", flat=True)) == ["test"]


# Listing


def test_each_key_lists_only_its_own_types_notifications_on_both_apis(
    service, guests, sms_template
):
    keys = {key_type: key_of(service, key_type) for key_type in KeyType.values}
    made = {}
    for key_type, key in keys.items():
        first = section_4(key).post("/notifications/sms", SMS, format="json").json()["id"]
        second = v2_sms(service, key, sms_template, "07700900123").json()["id"]
        made[key_type] = {first, second}

    for key_type, key in keys.items():
        listed = section_4(key).get("/notifications").json()["notifications"]
        assert {n["id"] for n in listed} == made[key_type], key_type
        listed = v2(service, key).get("/v2/notifications").json()["notifications"]
        assert {n["id"] for n in listed} == made[key_type], key_type


# Test keys


@pytest.fixture
def wire():
    """Every provider's server: any request to one is recorded (and refused)."""
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(FIRETEXT_URL, status=500)
        mock.post(MMG_URL, status=500)
        yield mock


@pytest.fixture
def sms_providers(settings):
    settings.FIRETEXT_URL = FIRETEXT_URL
    settings.MMG_URL = MMG_URL
    settings.FIRETEXT_API_KEY = settings.MMG_API_KEY = "provider-key"


@pytest.fixture
def ses_server(monkeypatch):
    """A real HTTP server where SES would be: it must hear nothing."""
    server = Receiver()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SES", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield server
    server.stop()


@pytest.fixture
def callback(service, settings):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    service_callback_set(
        service=service, url="http://127.0.0.1:9/callbacks", bearer_token=BEARER_TOKEN
    )


SMS_OUTCOMES = [
    ("07700 900123", "delivered"),
    ("07700 900003", "temporary-failure"),
    ("+44 7700 900002", "permanent-failure"),
]


@pytest.mark.parametrize("provider", ["firetext", "mmg"])
@pytest.mark.parametrize(("phone_number", "final"), SMS_OUTCOMES)
def test_a_test_keys_text_is_never_sent_and_its_simulated_receipt_decides_its_status(
    service, sms_providers, wire, callback, provider, phone_number, final
):
    prefer(provider)
    before = notification_status_counts(since=timezone.now() - timedelta(hours=1))
    client = section_4(key_of(service, KeyType.TEST))
    created = client.post(
        "/notifications/sms", {**SMS, "phone_number": phone_number}, format="json"
    )
    assert created.status_code == 201

    tasks.deliver_sms(created.json()["id"])

    assert len(wire.calls) == 0  # no provider's server heard of it
    shown = client.get(f"/notifications/{created.json()['id']}").json()
    assert (shown["status"], shown["sent_by"]) == (final, provider)
    notification = Notification.objects.get()
    attempts = SendAttempt.objects.filter(notification=notification)
    assert list(attempts.values_list("provider", "outcome")) == [(provider, "simulated")]
    receipts = list(Receipt.objects.order_by("id"))
    assert {r.provider for r in receipts} == {provider}
    assert all(r.state == "processed" for r in receipts)
    assert receipts[-1].reference == str(notification.id)
    if provider == "firetext" and final == "temporary-failure":
        # pending first, then declined with code 102, as GOV.UK Notify simulates it
        statuses = [parse_qs(r.body)["status"][0] for r in receipts]
        assert statuses == ["2", "1"] and parse_qs(receipts[1].body)["code"] == ["102"]
    event = CallbackEvent.objects.get(notification=notification)
    assert event.payload["status"] == final
    # Neither the day's statistics nor the console's counts see it; a rebuild agrees.
    assert set(statistics_of(service).values()) == {0}
    assert notification_status_counts(since=timezone.now() - timedelta(hours=1)) == before
    assert daily_statistics_rebuild(day=timezone.localdate())[1] == []


EMAIL_OUTCOMES = [
    ("someone@example.com", "delivered"),
    ("temp-fail@simulator.notify", "temporary-failure"),
    ("perm-fail@simulator.notify", "permanent-failure"),
]


@pytest.mark.parametrize(("email_address", "final"), EMAIL_OUTCOMES)
def test_a_test_keys_email_never_reaches_ses_and_goes_through_the_ses_receipt_path(
    service, ses_server, callback, settings, email_address, final
):
    # The simulated receipt is made here, not by SNS: the topic list and signatures that a
    # posted one must pass don't apply to it.
    settings.SES_SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-1:123456789012:ses-receipts"]
    settings.SNS_VERIFY_SIGNATURES = True
    client = section_4(key_of(service, KeyType.TEST))
    email = {**EMAIL, "email_address": email_address}
    created = client.post("/notifications/email", email, format="json")

    tasks.deliver_email(created.json()["id"])

    assert ses_server.received == []
    notification = Notification.objects.get()
    assert (notification.status, notification.sent_by) == (final, "ses")
    assert notification.provider_reference
    receipt = Receipt.objects.get()
    assert (receipt.provider, receipt.state) == ("ses", "processed")
    assert receipt.reference == notification.provider_reference
    assert CallbackEvent.objects.get(notification=notification).payload["status"] == final
    assert set(statistics_of(service).values()) == {0}


def test_a_test_keys_texts_count_neither_in_a_providers_error_rate_nor_its_speed(
    service, sms_providers, wire
):
    prefer("firetext")
    client = section_4(key_of(service, KeyType.TEST))
    slow = {**SMS, "phone_number": "07700900003"}  # pending first: would look in flight
    for body in (SMS, slow):
        tasks.deliver_sms(client.post("/notifications/sms", body, format="json").json()["id"])
    assert Notification.objects.filter(sent_by="firetext").count() == 2
    assert failover.provider_error_rate(provider="firetext") == (0, 0)
    since = timezone.now() - timedelta(hours=1)
    assert provider_window_counts(provider="firetext", since=since) == (0, 0)
    assert failover.provider_slow_share(provider="firetext") == (0.0, 0)


def test_a_test_keys_v2_text_goes_the_same_way(service, sms_providers, wire, sms_template):
    prefer("mmg")
    key = key_of(service, KeyType.TEST)
    created = v2_sms(service, key, sms_template, "07700900002")

    tasks.deliver_sms(created.json()["id"])

    assert len(wire.calls) == 0
    shown = v2(service, key).get(f"/v2/notifications/{created.json()['id']}").json()
    assert shown["status"] == "permanent-failure"
    assert Receipt.objects.get().provider == "mmg"
    assert set(statistics_of(service).values()) == {0}


def test_a_normal_keys_text_still_reaches_the_provider_and_is_counted(service, sms_providers, wire):
    """The other side of the tests above: the same path with a normal key calls the provider."""
    prefer("firetext")
    client = section_4(key_of(service, KeyType.NORMAL))
    created = client.post("/notifications/sms", SMS, format="json")
    tasks.deliver_sms(created.json()["id"])
    assert len(wire.calls) >= 1
    assert statistics_of(service)["sms_requested"] == 1


# The admin


@pytest.fixture
def admin_client(db):
    from django.contrib.auth.models import User

    client = APIClient()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def test_the_admin_makes_a_key_of_a_type_and_shows_it_once(service, admin_client):
    answer = admin_client.post(
        "/admin/sending/apikey/add/",
        {"service": str(service.id), "key_name": "Trying out", "key_type": "test"},
    )
    assert answer.status_code == 200
    page = answer.content.decode()
    key = page.split('<code id="api-key">')[1].split("</code>")[0]
    assert key.startswith(f"trying_out-{service.id}-")
    assert ApiKey.objects.get().key_type == "test"
    assert section_4(key).get("/notifications").status_code == 200
    # Never shown again.
    listed = admin_client.get("/admin/sending/apikey/").content.decode()
    shown = admin_client.get(f"/admin/sending/apikey/{ApiKey.objects.get().id}/change/")
    assert key[-36:] not in listed and key[-36:] not in shown.content.decode()


def test_the_admin_shows_when_each_key_was_last_used(service, admin_client, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(api_keys, "used_clock", lambda: clock[0])
    key = key_of(service, KeyType.NORMAL)
    assert ApiKey.objects.get().last_used_at is None
    section_4(key).get("/notifications")
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    # Written at most once a minute per key by each process ...
    v2(service, key).get("/v2/notifications")
    assert ApiKey.objects.get().last_used_at == first
    clock[0] += api_keys.USED_WRITE_SECONDS
    # ... by either API.
    v2(service, key).get("/v2/notifications")
    assert ApiKey.objects.get().last_used_at > first
    page = admin_client.get("/admin/sending/apikey/").content.decode()
    assert "column-last_used_at" in page


def test_the_admin_puts_a_recipient_on_the_guest_list_normalised(service, admin_client):
    form = {
        "name": service.name,
        "guest_list-TOTAL_FORMS": "2",
        "guest_list-INITIAL_FORMS": "0",
        "guest_list-0-recipient": "+44 7700 900 123",
        "guest_list-1-recipient": "Person@Example.com",
        **{
            f"{prefix}-{n}": "0"
            for prefix in ("api_keys", "sms_senders", "reply_to_addresses")
            for n in ("TOTAL_FORMS", "INITIAL_FORMS")
        },
    }
    answer = admin_client.post(f"/admin/sending/service/{service.id}/change/", form)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert sorted(GuestListRecipient.objects.values_list("recipient", flat=True)) == [
        "447700900123",
        "person@example.com",
    ]
