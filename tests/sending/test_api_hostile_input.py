"""Hostile input to the API (issue 10): every bad request is a 4xx in the contract's error
shape, never a 500 or an HTML page, and nothing is written."""

import base64
import json

import pytest
from rest_framework.test import APIClient

from sending.api import views
from sending.models import Notification
from tests.sending.test_api import SMS

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
    ],
)
def test_a_tampered_list_cursor_is_a_400_naming_the_cursor(client, token):
    messages = api_error(client.get("/notifications", {"cursor": token}), 400)
    assert messages == ["cursor is not a valid cursor (use links.next as it was given)"]


def test_the_next_link_still_pages(client, service):
    for _ in range(51):
        client.post("/notifications/sms", SMS, format="json")
    first = client.get("/notifications").json()
    second = client.get(first["links"]["next"])

    assert second.status_code == 200
    assert len(first["notifications"]) == 50 and len(second.json()["notifications"]) == 1
    seen = {n["id"] for n in first["notifications"] + second.json()["notifications"]}
    assert len(seen) == 51


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


@pytest.mark.parametrize("field", ["phone_number", "content", "reference"])
def test_a_lone_surrogate_in_a_field_is_a_400_naming_the_field(client, field):
    body = json.dumps({**SMS, field: "a\ud800b"})  # json.dumps writes it as \ud800
    messages = api_error(post_raw(client, "/notifications/sms", body), 400)

    assert len(messages) == 1 and messages[0].startswith(f"{field} ")
    assert not Notification.objects.exists()


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
