"""`Transfer-Encoding: chunked` bodies under gunicorn, which de-chunks them: Django alone would
read them as empty (issue 10)."""

import json
import uuid

import pytest
import requests

from receipts.models import Receipt
from sending.models import ApiKey, Notification, Service
from tests.live import running_gunicorn
from tests.receipts.conftest import inbox_drain

pytestmark = pytest.mark.django_db(transaction=True)


def chunks(body: bytes, size: int = 7):
    """A generator body: requests sends it chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker):
    with running_gunicorn(workers=1) as url:
        yield url


def test_a_chunked_api_request_is_read(web):
    _, secret = ApiKey.issue(Service.objects.create(name="Chunked"))
    body = json.dumps({"phone_number": "07700900123", "content": "in pieces"}).encode()
    response = requests.post(
        f"{web}/notifications/sms",
        data=chunks(body),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 201, response.text
    assert Notification.objects.get(id=response.json()["id"]).content == "in pieces"


def test_a_chunked_receipt_is_read_and_applied(web):
    notification_id = uuid.uuid4()
    body = f"status=0&reference={notification_id}&time=2016-03-10+14:17:00".encode()
    response = requests.post(
        f"{web}/notifications/sms/firetext",
        data=chunks(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )

    assert response.status_code == 200, response.text  # read: not 400 "status missing"
    inbox_drain()  # what the inbox drain's worker does once the receipt is stored
    receipt = Receipt.objects.get()
    assert receipt.body == body.decode()
    assert receipt.outcome == "unknown notification"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/notifications/sms/mmg",
            {"result": "error", "message": ["MMG callback failed: body over 1048576 bytes"]},
        ),
        (
            "/notifications/sms",
            {
                "status_code": 413,
                "errors": [{"error": "BadRequestError", "message": "body over 1048576 bytes"}],
            },
        ),
    ],
)
def test_a_chunked_body_over_the_limit_is_a_413(web, path, expected):
    _, secret = ApiKey.issue(Service.objects.create(name="Chunked"))
    response = requests.post(
        f"{web}{path}",
        data=chunks(b"x" * (1024 * 1024 + 10), size=64 * 1024),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
        timeout=30,
    )

    assert response.status_code == 413, response.text
    assert response.json() == expected
    assert not Receipt.objects.exists()
