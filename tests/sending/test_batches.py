"""`POST /notifications/{sms,email}/batch` (contract section 4, "Batches")."""

import math
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from notifyproject.broker import broker_handle
from sending.api.throttling import ApiKeyRateThrottle
from sending.models import Notification
from stats.models import DailyStatistics

SMS = {"phone_number": "07700 900123", "content": "Your code is 1234"}
EMAIL = {"email_address": "someone@example.com", "subject": "Hello", "content": "Body text"}


def texts(count: int) -> list[dict]:
    return [{**SMS, "reference": f"r{n}", "content": f"Code {n}"} for n in range(count)]


def batch(client, path, items, **extra):
    return client.post(path, {"notifications": items}, format="json", **extra)


def messages(response) -> list[str]:
    body = response.json()
    assert body["status_code"] == response.status_code
    return [e["message"] for e in body["errors"]]


def test_a_batch_of_texts_is_accepted_in_order(api_client, service):
    items = [*texts(2), {**SMS, "content": "ç" * 135, "phone_number": "+33 6 12 34 56 78"}]

    response = batch(api_client, "/notifications/sms/batch", items)

    assert response.status_code == 201
    answered = response.json()["notifications"]
    assert [n["reference"] for n in answered] == ["r0", "r1", None]
    assert [n["fragment_count"] for n in answered] == [1, 1, 3]
    assert answered[2]["phone_number"] == "33612345678"
    assert {n["status"] for n in answered} == {"created"}
    stored = {str(n.id): n for n in Notification.objects.all()}
    assert [stored[n["id"]].client_reference for n in answered] == ["r0", "r1", None]
    assert {n.service_id for n in stored.values()} == {service.id}
    assert [stored[n["id"]].fragment_count for n in answered] == [1, 1, 3]
    row = DailyStatistics.objects.get(service=service)
    assert (row.sms_requested, row.sms_fragments, row.emails_requested) == (3, 5, 0)
    single = api_client.get(f"/notifications/{answered[0]['id']}").json()
    assert single == answered[0]


def test_a_batch_of_emails_is_accepted(api_client, service):
    items = [{**EMAIL, "reference": f"e{n}"} for n in range(3)]

    response = batch(api_client, "/notifications/email/batch", items)

    assert response.status_code == 201
    assert [n["email_address"] for n in response.json()["notifications"]] == [
        "someone@example.com"
    ] * 3
    assert all(n["fragment_count"] is None for n in response.json()["notifications"])
    assert DailyStatistics.objects.get(service=service).emails_requested == 3


def test_a_thousand_is_accepted(api_client, service):
    response = batch(api_client, "/notifications/sms/batch", texts(1000))

    assert response.status_code == 201
    assert len(response.json()["notifications"]) == 1000
    assert Notification.objects.count() == 1000
    assert DailyStatistics.objects.get(service=service).sms_requested == 1000


BAD_BATCHES = [
    (
        [*texts(3), {**SMS, "phone_number": "020 7946 0000"}],
        ["notifications[3].phone_number Not a UK mobile number"],
    ),
    (
        [{**SMS, "content": ""}, *texts(1), {"phone_number": 7, "content": "x" * 919, "to": "me"}],
        [
            "notifications[0].content Can't be empty",
            "notifications[2].phone_number must be a string, not int",
            "notifications[2].content Text messages cannot be longer than 6 parts "
            "(918 GSM characters or 402 others), this one is 7 parts",
            "notifications[2].to Additional properties are not allowed",
        ],
    ),
    (
        [*texts(1), "a text"],
        ["notifications[1] Invalid data. Expected a dictionary, but got str."],
    ),
    ([], ["notifications must hold 1 to 1000 notifications, not 0"]),
    (texts(1001), ["notifications must hold 1 to 1000 notifications, not 1001"]),
    ({"phone_number": "07700900123"}, ["notifications must be a list, not dict"]),
]


@pytest.mark.parametrize(("items", "expected"), BAD_BATCHES)
def test_a_bad_batch_writes_nothing_and_names_each_bad_item(api_client, items, expected):
    response = batch(api_client, "/notifications/sms/batch", items)

    assert response.status_code == 400
    assert messages(response) == expected
    assert {e["error"] for e in response.json()["errors"]} == {"ValidationError"}
    assert Notification.objects.count() == 0
    assert DailyStatistics.objects.count() == 0


def test_the_body_must_be_an_object_with_notifications_only(api_client):
    missing = api_client.post("/notifications/sms/batch", {"items": []}, format="json")
    assert messages(missing) == [
        "items Additional properties are not allowed",
        "notifications is a required property",
    ]
    a_list = api_client.post("/notifications/sms/batch", [SMS], format="json")
    assert messages(a_list) == ["Invalid data. Expected a dictionary, but got list."]


def test_an_email_batch_checks_email_fields(api_client):
    response = batch(api_client, "/notifications/email/batch", [EMAIL, {**EMAIL, "subject": ""}])
    assert messages(response) == ["notifications[1].subject Can't be empty"]


def queue_contents() -> list[dict]:
    return [SignedPackage.loads(message[1]) for message in get_broker().dequeue() or []]


def test_a_batch_queues_one_drain_after_commit_in_one_round_trip(
    api_client, monkeypatch, django_capture_on_commit_callbacks
):
    broker = broker_handle()
    broker.purge_queue()
    commands = []
    if connection.vendor == "postgresql" and hasattr(broker, "connection"):  # Redis
        real = broker.connection.execute_command

        def counted(*args, **kwargs):
            commands.append(args[0])
            return real(*args, **kwargs)

        monkeypatch.setattr(broker.connection, "execute_command", counted)
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = batch(api_client, "/notifications/sms/batch", texts(25))
        assert commands == [] and callbacks  # nothing queued before the commit
        before = len(queries)
        for callback in callbacks:  # the drain request (and the statsd counter)
            callback()
    to_broker = commands or [
        q["sql"] for q in queries.captured_queries[before:] if "django_q_ormq" in q["sql"]
    ]
    assert len(to_broker) == 1

    assert response.status_code == 201
    # One drain of the channel for the whole batch: the table is the queue.
    assert [(t["func"], t["args"]) for t in queue_contents()] == [
        ("sending.tasks.drain_deliveries", ("sms",))
    ]


def test_the_writes_do_not_grow_with_the_batch(api_client, monkeypatch):
    copies = []
    if connection.vendor == "postgresql":  # the rows go in by COPY, which Django doesn't see
        import psycopg

        real_copy = psycopg.Cursor.copy

        def copy(self, statement, *args, **kwargs):
            copies.append(statement)
            return real_copy(self, statement, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "copy", copy)

    def round_trips(count: int) -> tuple[list[str], int]:
        copies.clear()
        with CaptureQueriesContext(connection) as queries:
            assert batch(api_client, "/notifications/sms/batch", texts(count)).status_code == 201
        sql = [q["sql"] for q in queries.captured_queries]
        inserts = [q for q in sql if q.startswith('INSERT INTO "sending_notification"')]
        # Each statement by its verb and table, so values and savepoint names don't count.
        shapes = [" ".join(q.split()[:3]) for q in sql if q not in inserts]
        return [re.sub(r'"s\d+_x\d+"', "", shape) for shape in shapes], len(inserts + copies)

    round_trips(1)  # the day's statistics row exists from here on
    few, few_inserts = round_trips(2)
    many, many_inserts = round_trips(200)
    assert many == few
    assert few_inserts == 1
    # One statement on PostgreSQL; Django splits the insert on SQLite (999 parameters each).
    per_insert = connection.ops.bulk_batch_size(Notification._meta.concrete_fields, [None] * 200)
    expected = 1 if connection.vendor == "postgresql" else math.ceil(200 / per_insert)
    assert many_inserts == expected
    assert Notification.objects.count() == 203


def test_each_item_counts_against_the_rate_limit(api_client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "5/min"})
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 6000.0)

    assert batch(api_client, "/notifications/sms/batch", texts(3)).status_code == 201
    refused = batch(api_client, "/notifications/sms/batch", texts(3))
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["error"] == "RateLimitError"
    # The refused batch used up nothing: two more fit, a third does not.
    assert batch(api_client, "/notifications/sms/batch", texts(2)).status_code == 201
    assert api_client.post("/notifications/sms", SMS, format="json").status_code == 429
    assert Notification.objects.count() == 5


def test_a_batch_retried_with_its_key_is_replayed(api_client, service):
    first = batch(api_client, "/notifications/sms/batch", texts(3), HTTP_IDEMPOTENCY_KEY="b-1")
    again = batch(api_client, "/notifications/sms/batch", texts(3), HTTP_IDEMPOTENCY_KEY="b-1")
    other = batch(api_client, "/notifications/sms/batch", texts(2), HTTP_IDEMPOTENCY_KEY="b-1")

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert Notification.objects.count() == 3
    assert DailyStatistics.objects.get(service=service).sms_requested == 3


def test_the_schema_describes_batches(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/notifications/sms/batch", "/notifications/email/batch"):
        operation = paths[path]["post"]
        assert "Idempotency-Key" in {p["name"] for p in operation["parameters"]}
        assert {"201", "400", "409", "422", "429"} <= set(operation["responses"])


@pytest.mark.parametrize(
    ("path", "item"),
    [
        ("/notifications/sms", {**SMS, "phone_number": "+33 6 12 34 56 78"}),
        ("/notifications/email", EMAIL),
    ],
)
def test_a_batched_notification_is_stored_as_a_single_one_is(api_client, path, item):
    single = api_client.post(path, item, format="json").json()["id"]
    batched = batch(api_client, f"{path}/batch", [item]).json()["notifications"][0]["id"]

    def stored(notification_id) -> dict:
        row = Notification.objects.filter(id=notification_id).values().get()
        return {
            k: v for k, v in row.items() if k not in {"id", "created_at", "updated_at", "queued_at"}
        }

    assert stored(batched) == stored(single)
    assert stored(batched)["status"] == "created"
