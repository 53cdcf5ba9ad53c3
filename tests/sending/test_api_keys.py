"""API keys found through the shared cache: revoking and deleting still refuse at once."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from sending.api.serializers import NotificationSerializer
from sending.api_keys import _cache_key, _entry, api_key_find, api_keys_revoke
from sending.models import ApiKey, Notification, NotificationStatus, api_key_hash

SMS = {"phone_number": "07700 900123", "content": "Your code is 1234"}


def test_a_key_revoked_after_use_is_refused_at_once(
    api_client, service, django_capture_on_commit_callbacks
):
    assert api_client.post("/notifications/sms", SMS, format="json").status_code == 201

    with django_capture_on_commit_callbacks(execute=True):
        assert api_keys_revoke(keys=ApiKey.objects.filter(service=service)) == 1

    response = api_client.post("/notifications/sms", SMS, format="json")
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == "API key revoked"
    assert Notification.objects.count() == 1
    assert ApiKey.objects.get(service=service).revoked_at is not None


def test_revoking_through_the_admin_refuses_the_key(
    api_client, service, django_capture_on_commit_callbacks
):
    assert api_client.get("/notifications").status_code == 200
    admin = APIClient()
    admin.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    key = ApiKey.objects.get(service=service)

    with django_capture_on_commit_callbacks(execute=True):
        answer = admin.post(
            "/admin/sending/apikey/",
            {"action": "revoke", "_selected_action": [key.id]},
        )

    assert answer.status_code == 302
    assert api_client.get("/notifications").status_code == 403


def test_a_lookup_that_read_the_key_before_revocation_cannot_put_it_back(
    api_key, service, django_capture_on_commit_callbacks
):
    # The lookup read the row while the key was valid ...
    read_before = ApiKey.objects.select_related("service").get(key_hash=api_key_hash(api_key))
    with django_capture_on_commit_callbacks(execute=True):
        api_keys_revoke(keys=ApiKey.objects.filter(service=service))
    # ... and fills the cache only after the revocation's entry is there: refused.
    assert cache.add(_cache_key(read_before.key_hash), _entry(read_before), timeout=60) is False

    assert api_key_find(secret=api_key).revoked_at is not None


def test_a_deleted_key_is_unknown_at_once(api_client, service, django_capture_on_commit_callbacks):
    assert api_client.get("/notifications").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        ApiKey.objects.get(service=service).delete()

    assert api_client.get("/notifications").status_code == 401


def test_a_cached_key_carries_its_service(api_key, service):
    first = api_key_find(secret=api_key)
    again = api_key_find(secret=api_key)

    assert again.pk == first.pk and again.service == service
    assert again.service.name == "Test service" and again.revoked_at is None
    assert api_key_find(secret="not-a-key") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"notification_type": "sms", "recipient": "447700900123", "client_reference": None},
        {
            "notification_type": "email",
            "recipient": "someone@example.com",
            "subject": "Hello",
            "client_reference": "ref-9",
            "status": NotificationStatus.DELIVERED,
            "sent_by": "ses",
            "sent_at": datetime(2026, 11, 28, 14, 17, 0, 123456, tzinfo=UTC),
        },
    ],
)
def test_the_answer_is_what_drfs_fields_would_make(service, fields):
    notification = Notification.objects.create(service=service, content="Body", **fields)

    serializer = NotificationSerializer(notification)
    assert serializer.data == serializer.fields_representation(notification)
    assert list(serializer.data) == list(serializer.fields_representation(notification))
    reread = Notification.objects.get(id=notification.id)
    assert NotificationSerializer(reread).data == serializer.fields_representation(reread)
