import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "ops@example.com", "pw-123456789")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def staff_client(client, db):
    """Staff who may see notifications and receipts, but not reveal recipients."""
    user = get_user_model().objects.create_user("viewer", password="pw-123456789", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_notification", "view_receipt", "change_notification"]
        )
    )
    client.force_login(user)
    return client
