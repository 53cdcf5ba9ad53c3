"""Hostile input to the API (issue 10): every bad request is a 4xx in the contract's error
shape, never a 500 or an HTML page, and nothing is written."""

import base64
import json

import pytest
from rest_framework.test import APIClient

from sending.api import views
from sending.models import IdempotencyKey, Notification
from tests.sending.test_api import EMAIL, SMS

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(api_key) -> APIClient:
    """A client that answers with what the server answered, 500s included."""
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


def api_error(response, status: int) -> list[str]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status_code"] == status
    return [error["message"] for error in body["errors"]]


def post_raw(client, path: str, body: str | bytes, content_type: str = "application/json"):
    return client.generic("POST", path, body, content_type=content_type)


def cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "cD0yMDI0",  # p=2024: the case
        cursor("p=not-a-time"),
        cursor("p=2024-01-01T00:00:00"),  # no offset
        cursor("p=0001-01-01T00:00:00%2B02:00"),  # before year 1 in UTC
        cursor("p=2024-13-45T99:99:99%2B00:00"),
        cursor("o=-1&p=2024-01-01T00:00:00%2B00:00"),
        "not base64 at all!",
        "é",
        # Junk and well-formed cursors this service never gave out: each was read as "from
        # the start" or as a position of the caller's choosing (issue 20).
        cursor("junk"),
        cursor("o=0"),
        cursor("r=1"),
        cursor("p=2024-01-01T00:00:00%2B00:00"),
        cursor("o=3&p=2024-01-01T00:00:00%2B00:00"),
    ],
)
def test_a_tampered_list_cursor_is_a_400_naming_the_cursor(client, token):
    client.post("/notifications/sms", SMS, format="json")
    messages = api_error(client.get("/notifications", {"cursor": token}), 400)
    assert messages == ["cursor Invalid cursor"]


def test_the_next_link_still_pages(client, service):
    for _ in range(51):
        client.post("/notifications/sms", SMS, format="json")
    first = client.get("/notifications").json()
    second = client.get(first["links"]["next"])

    assert second.status_code == 200
    assert len(first["notifications"]) == 50 and len(second.json()["notifications"]) == 1
    seen = {n["id"] for n in first["notifications"] + second.json()["notifications"]}
    assert len(seen) == 51


def test_a_next_link_edited_by_one_character_is_refused(client):
    for _ in range(51):
        client.post("/notifications/sms", SMS, format="json")
    issued = client.get("/notifications").json()["links"]["next"].split("cursor=")[1]
    edited = issued[:-1] + ("A" if issued[-1] != "A" else "B")
    messages = api_error(client.get("/notifications", {"cursor": edited}), 400)
    assert messages == ["cursor Invalid cursor"]


@pytest.mark.parametrize("depth", [33, 999, 1_500, 100_000])
@pytest.mark.parametrize("path", ["/notifications/sms", "/notifications/email"])
def test_deeply_nested_json_is_a_400(client, path, depth):
    body = '{"content": ' + "[" * depth + "]" * depth + "}"
    messages = api_error(post_raw(client, path, body), 400)

    assert messages == ["JSON parse error - nested more than 32 levels deep"]
    assert not Notification.objects.exists()


def test_json_nested_within_the_limit_is_an_ordinary_validation_error(client):
    body = '{"phone_number": "07700900123", "content": ' + "[" * 31 + "]" * 31 + "}"
    messages = api_error(post_raw(client, "/notifications/sms", body), 400)
    assert messages == ["content must be a string, not list"]


UNSTORABLE = [
    ("a\ud800b", "must not contain a lone surrogate (U+D800)"),
    ("a\x00b", "must not contain a NUL character"),
]


@pytest.mark.parametrize(("value", "message"), UNSTORABLE)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        *(("/notifications/sms", SMS, field) for field in ("phone_number", "content", "reference")),
        *(
            ("/notifications/email", EMAIL, field)
            for field in ("email_address", "subject", "content", "reference")
        ),
    ],
)
def test_a_lone_surrogate_or_a_nul_in_a_field_is_a_400_naming_the_field(
    client, path, body, field, value, message
):
    body = json.dumps({**body, field: value})  # json.dumps writes \ud800 and \u0000
    messages = api_error(post_raw(client, path, body), 400)

    assert messages == [f"{field} {message}"]
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/notifications/email", {**EMAIL, "subject": "Hi\r\nBcc: all@example.com"}, "subject"),
        ("/notifications/email", {**EMAIL, "subject": "Hello\n"}, "subject"),
        ("/notifications/email", {**EMAIL, "subject": "Bell\x07"}, "subject"),
        ("/notifications/email", {**EMAIL, "reference": "a\u2028b"}, "reference"),
        ("/notifications/sms", {**SMS, "reference": "line one\nline two"}, "reference"),
        ("/notifications/sms", {**SMS, "reference": "tab\tseparated"}, "reference"),
    ],
)
def test_a_control_character_in_a_one_line_value_is_a_400_naming_the_field(
    client, path, body, field
):
    """A subject goes into a header and a reference onto one line (contract section 4)."""
    messages = api_error(client.post(path, body, format="json"), 400)

    assert len(messages) == 1
    assert messages[0].startswith(f"{field} must not contain a line break or other control ")
    assert not Notification.objects.exists()


def test_line_breaks_stay_allowed_in_content(client):
    body = {**EMAIL, "content": "Dear you,\r\n\r\nThe council\t(tax)"}
    assert client.post("/notifications/email", body, format="json").status_code == 201


def test_a_control_character_in_a_batch_item_is_named_by_its_place(client):
    items = [EMAIL, {**EMAIL, "subject": "Hi\r\nBcc: all@example.com"}]
    response = client.post("/notifications/email/batch", {"notifications": items}, format="json")

    assert api_error(response, 400) == [
        "notifications[1].subject must not contain a line break or other control character (U+000D)"
    ]
    assert not Notification.objects.exists()


@pytest.mark.parametrize("reference", ["a%0Ab", "a%0Db", "a%00b"])
def test_a_control_character_in_the_reference_filter_is_a_400(client, reference):
    response = client.get(f"/notifications?reference={reference}")
    [message] = api_error(response, 400)
    assert message.startswith("reference must not contain ")


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
def test_a_refused_request_does_not_take_its_idempotency_key(client, value):
    """Refused (400), the same key is free: the same bad body is refused again, not replayed,
    and a corrected body under the key is accepted (contract section 4)."""
    bad = json.dumps({**EMAIL, "subject": value})
    key = {"HTTP_IDEMPOTENCY_KEY": "order-7"}
    for _ in range(2):
        response = client.generic(
            "POST", "/notifications/email", bad, content_type="application/json", **key
        )
        assert api_error(response, 400)[0].startswith("subject must not contain a ")
        assert "Idempotent-Replayed" not in response
    assert not IdempotencyKey.objects.exists()

    good = client.post("/notifications/email", EMAIL, format="json", **key)
    assert good.status_code == 201
    assert Notification.objects.count() == 1


def test_a_lone_surrogate_as_a_field_name_is_a_400(client):
    body = json.dumps({**SMS, "\udfff": "x"})
    messages = api_error(post_raw(client, "/notifications/sms", body), 400)
    assert messages == ["\ufffd Additional properties are not allowed"]


def test_a_surrogate_encoded_in_a_query_filter_is_a_400(client):
    """The UTF-8-like bytes of U+D800 are not UTF-8: Django reads them as U+FFFD."""
    response = client.get("/notifications?status=%ED%A0%80")
    assert api_error(response, 400) == ['status "\ufffd\ufffd\ufffd" is not a valid choice.']


def test_a_body_over_the_limit_is_a_413_in_the_error_shape(client, settings):
    body = json.dumps({**SMS, "content": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    messages = api_error(post_raw(client, "/notifications/sms", body), 413)

    assert messages == ["body over 1048576 bytes"]
    assert not Notification.objects.exists()


def test_an_unhandled_error_is_a_500_in_the_error_shape(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "notification_create", broken)
    response = client.post("/notifications/sms", SMS, format="json")

    assert response.status_code == 500
    assert response.json() == {
        "status_code": 500,
        "errors": [{"error": "InternalServerError", "message": "Internal server error"}],
    }


@pytest.mark.parametrize("accept", ["text/html,*/*;q=0.8", "*/*", "application/json"])
def test_an_unhandled_error_is_json_with_debug_on_too(client, monkeypatch, settings, accept):
    """Django's debug page (HTML or plain text) is for the admin, never for the API."""
    settings.DEBUG = True

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "notification_create", broken)
    response = client.post("/notifications/sms", SMS, format="json", HTTP_ACCEPT=accept)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"] == [
        {"error": "InternalServerError", "message": "Internal server error"}
    ]


def test_a_bad_host_header_is_a_400_in_the_error_shape(client):
    response = client.get("/notifications", HTTP_HOST="evil.example")
    assert api_error(response, 400) == ["Bad request"]


def test_a_chunked_body_without_a_length_is_a_411(client):
    """What a server that can't de-chunk (runserver) hands Django."""
    response = client.generic(
        "POST",
        "/notifications/sms",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )
    assert api_error(response, 411) == [
        "Length Required: send the body with a Content-Length header"
    ]
