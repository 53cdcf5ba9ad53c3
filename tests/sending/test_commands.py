from io import StringIO

from django.core.management import call_command
from rest_framework.test import APIClient

from sending.models import ApiKey, Service


def test_create_api_key_prints_a_working_key_on_the_last_line(db):
    out = StringIO()
    call_command("create_api_key", "Council tax", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/notifications").status_code == 200
    assert Service.objects.filter(name="Council tax").count() == 1
    assert not ApiKey.objects.filter(key_hash=key).exists()  # only the hash is stored


def test_create_api_key_reuses_the_service(db):
    call_command("create_api_key", "Council tax", stdout=StringIO())
    call_command("create_api_key", "Council tax", stdout=StringIO())
    assert Service.objects.get(name="Council tax").api_keys.count() == 2
