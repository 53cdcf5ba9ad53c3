"""`Idempotency-Key` on the creating POSTs (contract section 4, "Idempotent requests")."""

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from sending import idempotency
from sending.models import ApiKey, IdempotencyKey, Notification, Service
from stats.models import DailyStatistics
from tests.conftest import REPO_ROOT, subprocess_env

SMS = {"phone_number": "07700 900123", "content": "Your code is 1234", "reference": "ref-1"}
EMAIL = {"email_address": "someone@example.com", "subject": "Hello", "content": "Body text"}

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
)


def post(client, path, body, key="key-1"):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def messages(response) -> list[tuple[str, str]]:
    return [(e["error"], e["message"]) for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("path", "body"), [("/notifications/sms", SMS), ("/notifications/email", EMAIL)]
)
def test_a_retry_answers_the_first_answer_and_creates_nothing(api_client, service, path, body):
    first = post(api_client, path, body)
    again = post(api_client, path, body)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Notification.objects.count() == 1
    row = DailyStatistics.objects.get(service=service)
    assert row.sms_requested + row.emails_requested == 1


def test_the_same_json_written_differently_is_the_same_request(api_client):
    first = post(api_client, "/notifications/sms", SMS)
    reordered = (
        '{"reference":"ref-1",  "content":"Your code is 1234","phone_number":"07700 900123"}'
    )
    again = api_client.post(
        "/notifications/sms", reordered, content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )  # fmt: skip

    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert Notification.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/notifications/sms", {**SMS, "content": "Your code is 9999"}),
        ("/notifications/email", EMAIL),  # the same key on another endpoint
    ],
)
def test_the_same_key_with_another_request_is_422(api_client, path, body):
    post(api_client, "/notifications/sms", SMS)

    response = post(api_client, path, body)

    assert response.status_code == 422
    assert messages(response) == [
        ("IdempotencyError", "Idempotency-Key has already been used with a different request")
    ]
    assert Notification.objects.count() == 1


def test_a_refused_request_does_not_take_the_key(api_client):
    refused = post(api_client, "/notifications/sms", {**SMS, "phone_number": "020 7946 0000"})
    assert refused.status_code == 400

    accepted = post(api_client, "/notifications/sms", SMS)

    assert accepted.status_code == 201
    assert "Idempotent-Replayed" not in accepted
    assert Notification.objects.count() == 1


def test_keys_are_per_service(api_client, db):
    post(api_client, "/notifications/sms", SMS)
    _, secret = ApiKey.issue(Service.objects.create(name="Other"))
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = post(other, "/notifications/sms", SMS)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Notification.objects.count() == 2


def test_without_a_key_every_request_creates(api_client):
    api_client.post("/notifications/sms", SMS, format="json")
    api_client.post("/notifications/sms", SMS, format="json")
    assert Notification.objects.count() == 2
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\there"])
def test_a_key_that_is_not_1_to_255_printable_ascii_is_400(api_client, key):
    response = post(api_client, "/notifications/sms", SMS, key=key)

    assert response.status_code == 400
    assert messages(response) == [
        ("ValidationError", "Idempotency-Key must be 1 to 255 printable ASCII characters")
    ]
    assert Notification.objects.count() == 0


def test_the_longest_key_is_kept(api_client):
    key = "~" * 255
    post(api_client, "/notifications/sms", SMS, key=key)
    assert post(api_client, "/notifications/sms", SMS, key=key)["Idempotent-Replayed"] == "true"


def test_only_the_answer_is_kept(api_client):
    answer = post(api_client, "/notifications/sms", SMS)

    stored = IdempotencyKey.objects.get()
    assert (stored.key, stored.status_code, stored.response_body) == (
        "key-1",
        201,
        answer.content.decode(),
    )
    assert len(stored.request_hash) == 64 and "07700" not in stored.request_hash


def test_a_key_is_kept_for_24_hours_then_swept(api_client, monkeypatch):
    start = timezone.now()
    monkeypatch.setattr(idempotency, "now", lambda: start)
    first = post(api_client, "/notifications/sms", SMS).json()

    monkeypatch.setattr(idempotency, "now", lambda: start + timedelta(hours=23, minutes=59))
    assert post(api_client, "/notifications/sms", SMS).json()["id"] == first["id"]
    assert idempotency.idempotency_keys_sweep() == 0

    monkeypatch.setattr(idempotency, "now", lambda: start + timedelta(hours=24, seconds=1))
    assert idempotency.idempotency_keys_sweep() == 1
    assert IdempotencyKey.objects.count() == 0
    fresh = post(api_client, "/notifications/sms", SMS)
    assert fresh.status_code == 201 and fresh.json()["id"] != first["id"]


def test_an_expired_key_not_yet_swept_is_free_again(api_client, monkeypatch):
    start = timezone.now()
    monkeypatch.setattr(idempotency, "now", lambda: start)
    first = post(api_client, "/notifications/sms", SMS).json()
    monkeypatch.setattr(idempotency, "now", lambda: start + timedelta(hours=25))

    again = post(api_client, "/notifications/sms", {**SMS, "content": "another"})

    assert again.status_code == 201 and again.json()["id"] != first["id"]
    assert IdempotencyKey.objects.count() == 1


def test_the_sweep_runs_on_a_schedule(db):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="sending.tasks.sweep_idempotency_keys")
    assert schedule.minutes == 60 and schedule.repeats == -1


def test_the_schema_shows_the_header_and_its_answers(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/notifications/sms"]["post"]
    header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header.get("required", False)
    assert {"201", "400", "409", "422", "429"} <= set(operation["responses"])
    assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
    assert "Idempotency-Key" in str(schema["paths"]["/notifications/email"]["post"])


# --- concurrency: real transactions on separate connections -------------------------------------


class HeldCreate:
    """Holds the first create inside its transaction until released, so another request can
    come while it is in progress."""

    def __init__(self, monkeypatch):
        from sending.api import views

        self.inside = threading.Event()
        self.release = threading.Event()
        real = views.notification_create

        def held(**kwargs):
            notification = real(**kwargs)
            self.inside.set()
            assert self.release.wait(60), "never released"
            return notification

        monkeypatch.setattr(views, "notification_create", held)


def in_thread(target) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run():
        try:
            result["response"] = target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_request_while_the_first_is_in_progress_is_409(api_key, monkeypatch):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    held = HeldCreate(monkeypatch)
    first, result = in_thread(lambda: post(client, "/notifications/sms", SMS))
    assert held.inside.wait(60)

    second = post(APIClient(HTTP_AUTHORIZATION=f"Bearer {api_key}"), "/notifications/sms", SMS)

    held.release.set()
    first.join(60)
    assert second.status_code == 409
    assert messages(second) == [
        ("IdempotencyError", "a request with this Idempotency-Key is still being processed")
    ]
    assert result["response"].status_code == 201
    third = post(APIClient(HTTP_AUTHORIZATION=f"Bearer {api_key}"), "/notifications/sms", SMS)
    assert third.status_code == 201 and third["Idempotent-Replayed"] == "true"
    assert third.json()["id"] == result["response"].json()["id"]
    assert Notification.objects.count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_racing_requests_create_one_notification_by_the_unique_constraint(api_key, monkeypatch):
    """Without the in-progress lock both get in at once: the database's unique constraint alone
    lets one commit, and the other rolls back and replays it."""
    from sending.api import views

    monkeypatch.setattr(idempotency, "_claim_postgresql", lambda **kwargs: (True, None))
    both_inside = threading.Barrier(2, timeout=60)
    real = views.notification_create

    def racing(**kwargs):
        both_inside.wait()  # both past the claim, inside their transactions
        return real(**kwargs)

    monkeypatch.setattr(views, "notification_create", racing)

    def request():
        return post(APIClient(HTTP_AUTHORIZATION=f"Bearer {api_key}"), "/notifications/sms", SMS)

    threads = [in_thread(request) for _ in range(2)]
    for thread, _ in threads:
        thread.join(60)

    answers = [result["response"] for _, result in threads]
    assert [a.status_code for a in answers] == [201, 201]
    assert sorted(a.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    assert answers[0].content == answers[1].content
    assert Notification.objects.count() == 1
    assert DailyStatistics.objects.get().sms_requested == 1


CRASHING_CREATE = """
import sys, time
from sending.idempotency import idempotent_answer
from sending.models import Service
from sending.services import notification_create

def create():
    notification_create(service=service, notification_type="sms", recipient="447700900123",
                        content="killed half-way")
    print("inside", flush=True)
    time.sleep(600)

service = Service.objects.get(name="Test service")
idempotent_answer(service=service, key="key-1", request_hash="h", create=create)
"""


@pytest.mark.django_db(transaction=True)
def test_a_process_killed_holding_the_key_leaves_it_free(api_client):
    """SIGKILL after claiming the key and writing, before committing: the claim and the writes
    were one transaction, so both are gone and a retry is served afresh (not 409 forever)."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", CRASHING_CREATE],
        cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = iter(process.stdout.readline, "")
        assert any(line.strip() == "inside" for line in lines), "the create never started"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    deadline = time.monotonic() + 30
    while (response := post(api_client, "/notifications/sms", SMS)).status_code == 409:
        assert time.monotonic() < deadline, "the killed request's key never came free"
        time.sleep(0.1)
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert list(Notification.objects.values_list("content", flat=True)) == [SMS["content"]]
