"""Same-work baselines: plain Django views that make the same writes as the service's endpoints,
with none of what surrounds them (no DRF, no authentication, no validation, no log line).

- `POST /bench/same-work/create`: what `POST /notifications/sms` writes: one notification row
  and the day's `sms_requested` count (one `INSERT … ON CONFLICT DO UPDATE`) in one
  transaction, then the same Django Q task pushed to the broker once committed.
- `POST /bench/same-work/receipt`: what a Firetext receipt writes: the raw body stored, the
  same conditional status change (`sending` → `delivered`) and the day's `sms_delivered` count,
  in one statement prepared once per connection (as the service does on PostgreSQL).

The SQL is written here, from the models' column names, not taken from the service, so a cut
in the service's code can never make its baseline cheaper too. Served by the same gunicorn as
the service: `bench.baselines:application()` is the project's WSGI application with these two
paths added at the end of its URL patterns (the service's own paths resolve as before).
"""

import functools
import json
import os
import uuid
from urllib.parse import parse_qsl

CREATE_PATH = "/bench/same-work/create"
RECEIPT_PATH = "/bench/same-work/receipt"


def application():
    """gunicorn's app: `bench.baselines:application()`."""
    from django.core.wsgi import get_wsgi_application

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyproject.settings")
    app = get_wsgi_application()  # sets Django up before the views are imported
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    from notifyproject import urls

    urls.urlpatterns += [
        path(CREATE_PATH.lstrip("/"), csrf_exempt(create_same_work)),
        path(RECEIPT_PATH.lstrip("/"), csrf_exempt(receipt_same_work)),
    ]
    return app


def _columns(model, known: dict[str, str]) -> tuple[list[str], list[str], list]:
    """Every concrete column of `model`: the SQL for those in `known` (by column name), a
    parameter holding the field's default for the rest, so fields added later still insert."""
    from django.db import connection

    columns, values, defaults = [], [], []
    for field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.column in known:
            values.append(known[field.column])
        else:
            values.append("%s")
            default = field.get_default() if field.has_default() or not field.null else None
            defaults.append(field.get_db_prep_save(default, connection))
    return columns, values, defaults


def _count_sql(counted: dict[str, str], source: str) -> str:
    """`INSERT INTO stats_dailystatistics … {source} ON CONFLICT DO UPDATE` adding the counted
    columns (SQL values by column); `source` has `{values}` for every other column's value
    after the service and the day, each the field's default as an SQL literal (all of them
    integers: the day's counts)."""
    from stats.models import DailyStatistics

    others = [
        field
        for field in DailyStatistics._meta.concrete_fields
        if not field.primary_key and field.column not in ("service_id", "day", *counted)
    ]
    columns = ["service_id", "day", *counted, *(field.column for field in others)]
    values = [*counted.values(), *(str(int(field.get_default())) for field in others)]
    updates = ", ".join(
        f"{column} = stats_dailystatistics.{column} + EXCLUDED.{column}" for column in counted
    )
    return (
        f"INSERT INTO stats_dailystatistics ({', '.join(columns)}) "  # noqa: S608
        f"{source.format(values=', '.join(values))} "
        f"ON CONFLICT (service_id, day) DO UPDATE SET {updates}"
    )


def _named(values: list[str]) -> list[str]:
    """The defaults' `%s` placeholders as `%(d0)s`, `%(d1)s`…, in order."""
    numbers = iter(range(len(values)))
    return [f"%(d{next(numbers)})s" if value == "%s" else value for value in values]


@functools.cache
def _create_sql() -> tuple[str, str, list]:
    from sending.models import Notification

    known = {
        "id": "%(id)s",
        "service_id": "%(service)s",
        "notification_type": "'sms'",
        "recipient": "%(recipient)s",
        "content": "%(content)s",
        "client_reference": "%(reference)s",
        "fragment_count": "1",  # the benchmark's text is one part
        "status": "'created'",
        "created_at": "%(now)s",
        "updated_at": "%(now)s",
    }
    columns, values, defaults = _columns(Notification, known)
    placeholders = _named(values)
    insert = (
        f"INSERT INTO sending_notification ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(placeholders)})"
    )
    count = _count_sql({"sms_requested": "1", "sms_fragments": "1"}, "VALUES (%(service)s, "
                       "%(day)s, {values})")  # fmt: skip
    return insert, count, defaults


@functools.cache
def _service_id() -> str:
    """The one service the benchmark made (the baseline authenticates nobody)."""
    from sending.models import Service

    return str(Service.objects.order_by("created_at").values_list("id", flat=True)[0])


@functools.cache
def _broker():
    from django_q.brokers import get_broker

    return get_broker()


def create_same_work(request):
    from django.db import connection, transaction
    from django.http import JsonResponse
    from django.utils import timezone
    from django_q.tasks import async_task

    body = json.loads(request.body)
    insert, count, defaults = _create_sql()
    now = timezone.now()
    notification_id = uuid.uuid4()
    params = {
        "id": notification_id,
        "service": _service_id(),
        "recipient": body["phone_number"],
        "content": body["content"],
        "reference": body.get("reference"),
        "now": now,
        "day": timezone.localdate(now),
        **{f"d{n}": value for n, value in enumerate(defaults)},
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(insert, params)
        cursor.execute(count, params)
    async_task(
        "sending.tasks.deliver_sms",
        str(notification_id),
        task_name=f"deliver-sms-{notification_id}",
        broker=_broker(),
    )
    return JsonResponse({"id": str(notification_id), "status": "created"}, status=201)


@functools.cache
def _receipt_sql() -> tuple[str, list]:
    from receipts.models import Receipt

    known = {
        "id": "DEFAULT",
        "provider": "'firetext'",
        "body": "%(body)s",
        "content_type": "%(content_type)s",
        "received_at": "%(now)s",
        "state": "'processed'",
        "reference": "%(reference)s",
        "outcome": "'now delivered'",
        "processed_at": "%(now)s",
        "attempts": "1",
    }
    columns, values, defaults = _columns(Receipt, known)
    placeholders = _named(values)
    counted = _count_sql(
        {"sms_delivered": "1"},
        "SELECT service_id, (created_at AT TIME ZONE %(zone)s)::date, {values} FROM changed",
    )
    sql = (
        "WITH changed AS (UPDATE sending_notification SET status = 'delivered', "
        "provider_status_code = %(code)s, provider_status_reason = %(reason)s, "
        "updated_at = %(now)s WHERE id = %(id)s "
        "AND (status || '') IN ('created', 'sending', 'pending') "
        # A receipt applies only to a text Firetext was called for; it settles a call left open.
        "AND notification_type = 'sms' AND EXISTS (SELECT 1 FROM sending_sendattempt "
        "WHERE notification_id = %(id)s AND provider = 'firetext') "
        "RETURNING service_id, created_at), "
        "settled AS (UPDATE sending_sendattempt SET outcome = 'receipted' "
        "WHERE notification_id = %(id)s AND provider = 'firetext' AND outcome = 'started' "
        "RETURNING 1), "
        f"counted AS ({counted} RETURNING 1), "
        f"stored AS (INSERT INTO callbacks_receipt ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(placeholders)}) RETURNING id) "
        "SELECT (SELECT id FROM stored), (SELECT count(*) FROM counted)"
    )
    return sql, defaults


def receipt_same_work(request):
    import psycopg
    from django.db import connection
    from django.http import JsonResponse
    from django.utils import timezone

    body = request.body.decode()
    form = dict(parse_qsl(body))
    sql, defaults = _receipt_sql()
    params = {
        "id": form["reference"],
        "code": "",  # what a Firetext "0" without a code sets
        "reason": "",
        "now": timezone.now(),
        "zone": timezone.get_current_timezone_name(),
        "body": body,
        "content_type": request.META.get("CONTENT_TYPE", ""),
        "reference": form["reference"],
        **{f"d{n}": value for n, value in enumerate(defaults)},
    }
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:  # DATABASE_PREPARED_STATEMENTS off
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchone()
    else:
        # Prepared once per connection and then only bound and run, as the service's receipt
        # statement is: a plain view could do the same, so the baseline does too.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            cursor.fetchone()
    return JsonResponse({"result": "success"})
