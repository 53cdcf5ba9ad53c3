import uuid

import pytest
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from rest_framework.test import APIClient

from sending.api.throttling import ApiKeyRateThrottle
from sending.models import ApiKey, Notification, Service
from stats.models import DailyStatistics

SMS = {"phone_number": "07700 900123", "content": "Your code is 1234", "reference": "ref-1"}
EMAIL = {"email_address": "someone@example.com", "subject": "Hello", "content": "Body text"}


def error_messages(response) -> list[str]:
    body = response.json()
    assert body["status_code"] == response.status_code
    return [error["message"] for error in body["errors"]]


def test_sms_is_accepted_normalised_and_returned(api_client):
    response = api_client.post("/notifications/sms", SMS, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "sms"
    assert body["phone_number"] == "447700900123"
    assert body["status"] == "created"
    assert body["reference"] == "ref-1"
    assert body["sent_by"] is None and body["sent_at"] is None
    assert body["created_at"].endswith("Z")
    assert "email_address" not in body and "subject" not in body
    stored = Notification.objects.get(id=body["id"])
    assert stored.recipient == "447700900123"


def test_email_is_accepted_and_returned(api_client):
    response = api_client.post("/notifications/email", EMAIL, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["type"], body["email_address"], body["subject"]) == (
        "email",
        "someone@example.com",
        "Hello",
    )
    assert "phone_number" not in body


def test_accepting_counts_requested_in_todays_statistics(api_client, service):
    api_client.post("/notifications/sms", SMS, format="json")
    api_client.post("/notifications/sms", SMS, format="json")
    api_client.post("/notifications/email", EMAIL, format="json")

    row = DailyStatistics.objects.get(service=service)
    assert (row.sms_requested, row.emails_requested) == (2, 1)


def created_counts(lines: list[str]) -> dict[str, int]:
    """The statsd counters `api.notifications.*.created` summed by name (one packet per call)."""
    counts: dict[str, int] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name.startswith("notify.api.notifications.") and name.endswith(".created"):
            count, kind = value.split("|")
            assert kind == "c", line
            counts[name] = counts.get(name, 0) + int(count)
    return counts


def test_each_accepted_notification_is_counted_by_channel(
    api_client, statsd, django_capture_on_commit_callbacks
):
    """Contract section 8: `api.notifications.{sms,email}.created`, a text of a batch as one of a
    single request, counted once the request commits; refused and replayed requests accept
    nothing and count nothing."""
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            assert api_client.post("/notifications/sms", SMS, format="json").status_code == 201
        assert api_client.post("/notifications/email", EMAIL, format="json").status_code == 201
        three = {"notifications": [SMS, SMS, SMS]}
        assert api_client.post("/notifications/sms/batch", three, format="json").status_code == 201
        refused = api_client.post(
            "/notifications/sms", {**SMS, "phone_number": "12"}, format="json"
        )
        assert refused.status_code == 400
        for _ in range(2):
            replayed = api_client.post(
                "/notifications/email", EMAIL, format="json", HTTP_IDEMPOTENCY_KEY="once"
            )
        assert replayed["Idempotent-Replayed"] == "true"

    assert created_counts(statsd.received()) == {
        "notify.api.notifications.sms.created": 5,
        "notify.api.notifications.email.created": 2,
    }


def test_accepting_queues_its_channels_drain_after_commit(
    api_client, django_capture_on_commit_callbacks
):
    broker = get_broker()
    broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/notifications/sms", SMS, format="json")

    assert response.status_code == 201
    tasks = [SignedPackage.loads(message[1]) for message in broker.dequeue() or []]
    assert [(t["func"], t["args"]) for t in tasks] == [("sending.tasks.drain_deliveries", ("sms",))]


def test_get_returns_own_notification_and_404_for_others(api_client, db):
    created = api_client.post("/notifications/sms", SMS, format="json").json()

    assert api_client.get(f"/notifications/{created['id']}").json()["id"] == created["id"]

    other = Service.objects.create(name="Other")
    _, secret = ApiKey.issue(other)
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = stranger.get(f"/notifications/{created['id']}")
    assert response.status_code == 404
    assert error_messages(response) == ["Notification not found"]


@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_get_unknown_id_is_404(api_client, bad_id):
    response = api_client.get(f"/notifications/{bad_id}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["error"] == "NoResultFound"


def test_list_filters_and_paginates_with_a_cursor(api_client, monkeypatch):
    for i in range(3):
        api_client.post("/notifications/sms", {**SMS, "reference": f"r{i}"}, format="json")
    api_client.post("/notifications/email", EMAIL, format="json")

    everything = api_client.get("/notifications").json()
    assert len(everything["notifications"]) == 4
    assert everything["links"]["next"] is None
    assert [
        n["type"] for n in api_client.get("/notifications?type=email").json()["notifications"]
    ] == ["email"]
    by_ref = api_client.get("/notifications?reference=r1").json()["notifications"]
    assert [n["reference"] for n in by_ref] == ["r1"]
    assert api_client.get("/notifications?status=delivered").json()["notifications"] == []

    monkeypatch.setattr("sending.api.views.NotificationPagination.page_size", 3)
    first = api_client.get("/notifications").json()
    assert len(first["notifications"]) == 3
    second = api_client.get(first["links"]["next"]).json()
    assert len(second["notifications"]) == 1
    seen = {n["id"] for n in first["notifications"] + second["notifications"]}
    assert len(seen) == 4


def test_list_rejects_an_unknown_status_filter(api_client):
    response = api_client.get("/notifications?status=lost")
    assert response.status_code == 400
    assert error_messages(response) == ['status "lost" is not a valid choice.']


BAD_SMS = [
    ({**SMS, "phone_number": "020 7946 0000"}, "phone_number Not a UK mobile number"),
    ({**SMS, "phone_number": "07700 9OO123"}, "phone_number Must not contain letters or symbols"),
    ({**SMS, "phone_number": 7700900123}, "phone_number must be a string, not int"),
    ({"content": "hi"}, "phone_number is a required property"),
    ({**SMS, "content": ""}, "content Can't be empty"),
    ({**SMS, "content": "   "}, "content Can't be empty"),
    (
        {**SMS, "content": "x" * 919},
        "content Text messages cannot be longer than 6 parts (918 GSM characters or 402 others), "
        "this one is 7 parts",
    ),
    (
        {**SMS, "content": "😀" * 300},
        "content Text messages cannot be longer than 6 parts (918 GSM characters or 402 others), "
        "this one is 9 parts",
    ),
    ({**SMS, "content": ["a"]}, "content must be a string, not list"),
    ({**SMS, "colour": "red"}, "colour Additional properties are not allowed"),
]


@pytest.mark.parametrize(("body", "message"), BAD_SMS)
def test_bad_sms_requests_are_refused_and_write_nothing(api_client, body, message):
    response = api_client.post("/notifications/sms", body, format="json")

    assert response.status_code == 400
    assert message in error_messages(response)
    assert Notification.objects.count() == 0
    assert DailyStatistics.objects.count() == 0


BAD_EMAIL = [
    ({**EMAIL, "email_address": "not-an-email"}, "email_address Not a valid email address"),
    ({**EMAIL, "subject": ""}, "subject Can't be empty"),
    ({**EMAIL, "content": ""}, "content Can't be empty"),
    ({key: v for key, v in EMAIL.items() if key != "subject"}, "subject is a required property"),
    ({**EMAIL, "subject": None}, "subject Can't be null"),
]


@pytest.mark.parametrize(("body", "message"), BAD_EMAIL)
def test_bad_email_requests_are_refused_and_write_nothing(api_client, body, message):
    response = api_client.post("/notifications/email", body, format="json")

    assert response.status_code == 400
    assert message in error_messages(response)
    assert Notification.objects.count() == 0


def test_every_problem_is_reported_at_once(api_client):
    response = api_client.post("/notifications/sms", {"content": "", "extra": 1}, format="json")
    assert sorted(error_messages(response)) == [
        "content Can't be empty",
        "extra Additional properties are not allowed",
        "phone_number is a required property",
    ]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("{not json", "application/json"), ('["a list"]', "application/json")],
)
def test_a_body_that_is_not_a_json_object_is_400(api_client, body, content_type):
    response = api_client.post("/notifications/sms", body, content_type=content_type)
    assert response.status_code == 400
    assert Notification.objects.count() == 0


def test_a_form_body_is_415(api_client):
    response = api_client.post(
        "/notifications/sms", "a=b", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["error"] == "BadRequestError"


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer not-a-key", 401), ("Basic abc", 401), ("Bearer", 401)],
)
def test_missing_or_bad_keys_are_401(db, header, status):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post("/notifications/sms", SMS, format="json")

    assert response.status_code == status
    assert response.json()["errors"][0]["error"] == "AuthError"
    assert response["WWW-Authenticate"] == "Bearer"
    assert Notification.objects.count() == 0


def test_a_revoked_key_is_403(api_client, service):
    from django.utils import timezone

    ApiKey.objects.filter(service=service).update(revoked_at=timezone.now())
    response = api_client.post("/notifications/sms", SMS, format="json")

    assert response.status_code == 403
    assert error_messages(response) == ["API key revoked"]
    assert Notification.objects.count() == 0


def test_rate_limit_answers_429_with_retry_after(api_client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    # The throttle's clock, not the wall clock: a minute's edge between requests would reset it.
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 6015.0)
    statuses = [api_client.get("/notifications").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = api_client.get("/notifications")
    assert response.json()["errors"][0]["error"] == "RateLimitError"
    assert response["Retry-After"] == "45"


def test_rate_limit_counts_again_in_the_next_window(api_client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 6000.0)
    assert api_client.get("/notifications").status_code == 200
    limited = api_client.get("/notifications")
    assert limited.status_code == 429
    assert limited["Retry-After"] == "60"

    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 6060.0)
    assert api_client.get("/notifications").status_code == 200


def test_rate_limit_is_per_key(api_client, service, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 6000.0)
    assert api_client.get("/notifications").status_code == 200
    assert api_client.get("/notifications").status_code == 429

    _, secret = ApiKey.issue(service)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert other.get("/notifications").status_code == 200


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    assert "/notifications/sms" in schema.json()["paths"]
    assert client.get("/docs/").status_code == 200


def test_an_unknown_path_answers_in_the_error_shape(client, settings):
    settings.DEBUG = False
    response = client.post("/notifications/sms/", {}, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {"error": "NoResultFound", "message": "No such path: POST /notifications/sms/"}
    ]


def test_the_docs_are_served_without_a_cdn(client):
    page = client.get("/docs/").content.decode()
    assert "cdn.jsdelivr.net" not in page
    assert "swagger-ui-bundle.js" in page


@pytest.mark.parametrize(("content", "parts"), [("a" * 160, 1), ("a" * 161, 2), ("ç" * 135, 3)])
def test_a_text_carries_its_parts_and_they_are_counted(api_client, service, content, parts):
    response = api_client.post("/notifications/sms", {**SMS, "content": content}, format="json")

    assert response.json()["fragment_count"] == parts
    assert Notification.objects.get().fragment_count == parts
    row = DailyStatistics.objects.get(service=service)
    assert (row.sms_requested, row.sms_fragments) == (1, parts)
    email = api_client.post("/notifications/email", EMAIL, format="json").json()
    assert email["fragment_count"] is None
    assert api_client.get(f"/notifications/{email['id']}").json()["fragment_count"] is None
