"""The admin: callbacks set with write-only secrets, rolled; events and attempts visible."""

import re

import pytest

from sending.models import NotificationStatus
from sending.status import notification_update_status
from tests.webhooks.conftest import Answer, text
from webhooks import delivery
from webhooks.models import CallbackEvent, ServiceCallback

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_callback_is_added_with_its_secret_shown_once(admin_client, service, insecure):
    response = admin_client.post(
        "/admin/webhooks/servicecallback/add/",
        {"service": service.pk, "url": "http://127.0.0.1:9/cb", "bearer_token": "admin-token-123"},
        follow=True,
    )
    assert response.status_code == 200
    (shown,) = [m for m in messages_of(response) if "Signing secret" in m]
    secret = re.search(r"whsec_\S+", shown).group(0)
    callback = ServiceCallback.objects.get(service=service)
    assert callback.signing_secrets() == [secret]
    assert callback.bearer_token == "admin-token-123"

    page = admin_client.get(f"/admin/webhooks/servicecallback/{callback.pk}/change/")
    html = page.content.decode()
    assert secret not in html and "admin-token-123" not in html

    # Saved again with the token left empty: the token stays.
    admin_client.post(
        f"/admin/webhooks/servicecallback/{callback.pk}/change/",
        {"url": "http://127.0.0.1:9/other", "bearer_token": ""},
    )
    callback.refresh_from_db()
    assert (callback.url, callback.bearer_token) == ("http://127.0.0.1:9/other", "admin-token-123")


def test_the_admin_refuses_an_inside_address(admin_client, service, settings):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = False
    response = admin_client.post(
        "/admin/webhooks/servicecallback/add/",
        {"service": service.pk, "url": "https://127.0.0.1/cb", "bearer_token": "admin-token-123"},
    )
    assert "address not allowed: 127.0.0.1" in response.content.decode()
    assert ServiceCallback.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "token", "message"),
    [
        ("http://127.0.0.1:9/cb", "admin\r\ntoken-123", "printable ASCII characters"),
        ("http://127.0.0.1:9/cb", "admin token 123", "printable ASCII characters"),
        ("http://127.0.0.1:9/cb\r\nX: 1", "admin-token-123", "control character (U+000D)"),
    ],
)
def test_the_admin_refuses_a_token_or_url_that_cant_go_on_one_line(
    admin_client, service, insecure, url, token, message
):
    response = admin_client.post(
        "/admin/webhooks/servicecallback/add/",
        {"service": service.pk, "url": url, "bearer_token": token},
    )
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert ServiceCallback.objects.count() == 0


def test_a_secret_is_rolled_from_the_admin(admin_client, callback):
    response = admin_client.post(
        "/admin/webhooks/servicecallback/",
        {"action": "roll_secret", "_selected_action": [callback.callback.pk]},
        follow=True,
    )
    (shown,) = [m for m in messages_of(response) if "New signing secret" in m]
    new_secret = re.search(r"whsec_\S+", shown).group(0)
    callback.callback.refresh_from_db()
    assert callback.callback.signing_secrets() == [new_secret, callback.signing_secret]


def test_attempts_are_listed_under_the_notification_and_events_filter(
    admin_client, service, callback, receiver
):
    notification = text(service)
    notification_update_status(notification_id=notification.id, status=NotificationStatus.DELIVERED)
    receiver.answer(Answer(503))
    event = CallbackEvent.objects.get()
    delivery.callback_event_send(event_id=str(event.id))

    page = admin_client.get(f"/admin/sending/notification/{notification.id}/change/").content
    assert b"status callback attempts" in page.lower()
    assert b"503" in page and b"HTTP 503 Service Unavailable" in page

    listed = admin_client.get(
        "/admin/webhooks/callbackevent/", {"state": "failed-retrying", "service": service.pk}
    )
    assert (
        str(event.id) in listed.content.decode() or str(notification.id) in listed.content.decode()
    )
    none = admin_client.get("/admin/webhooks/callbackevent/", {"state": "delivered"})
    assert str(notification.id) not in none.content.decode()
