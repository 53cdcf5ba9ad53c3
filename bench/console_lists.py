"""How fast the operator's console opens with 1,000,000 notifications, 1,000,000 receipts and
1,000,000 send attempts: every list page, its filters and searches, a notification's page with
its timeline, the front page and the statistics chart.

The benchmark's own PostgreSQL database is filled by SQL (`INSERT … SELECT … FROM
generate_series`, a minute or two), vacuumed and analysed. Each page is then requested through
the whole Django stack in this process (Django's test client, logged in as a superuser, DEBUG
off): once to warm up, then `--repeat` times; the median and the slowest are reported with the
page's number of SQL queries.

    .venv/bin/python bench/console_lists.py            # or: make bench-console
    .venv/bin/python bench/console_lists.py --rows 100000 --repeat 3

`bench/run.py` (`make bench`) runs it too (`--quick`: 100,000 rows, two requests a page).

Target: every page's median under 1 second (exit status 0; 1 when one is missed, 2 when the run
itself went wrong). The database named by --database-url is dropped and made again, so its name
must contain "bench".
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    BenchError,
    base_env,
    bench_database_url,
    database_recreate,
    django_setup,
    figure,
    insert_select,
    manage,
    results_arguments,
    results_write,
    run,
    spread,
)

TARGET_SECONDS = 1.0
SERVICES = 10
DAYS = 30


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("console"))
    parser.add_argument("--rows", type=int, default=None, help="notifications (and receipts)")
    parser.add_argument("--repeat", type=int, default=None, help="timed requests per page")
    results_arguments(parser)
    args = parser.parse_args()
    # --quick (bench/run.py's smoke check): a tenth of the rows, two requests a page.
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.repeat = args.repeat or (2 if args.quick else 5)
    return args


def tables_fill(rows: int) -> float:
    """`rows` notifications over the last 30 days (80 % texts, 90 % delivered, 3 % technical
    failures, 1 % still created…), one send attempt and one receipt each (a few rejected, failed
    or for unknown notifications), and the statistics rows. Answers the seconds it took."""
    from django.conf import settings
    from django.db import connection

    from receipts.models import Receipt
    from sending.models import Notification, SendAttempt, Service

    started = time.monotonic()
    services = [Service.objects.create(name=f"Bench service {n}").id for n in range(SERVICES)]
    # Oldest first, as they arrive: g = rows is now, g = 1 thirty days ago.
    moment = f"now() - ((%(rows)s - g)::bigint * {DAYS * 86400} / %(rows)s) * interval '1 second'"
    status = (
        "CASE WHEN g %% 100 < 90 THEN 'delivered' WHEN g %% 100 < 93 THEN 'technical-failure' "
        "WHEN g %% 100 < 95 THEN 'permanent-failure' WHEN g %% 100 < 97 THEN 'temporary-failure' "
        "WHEN g %% 100 = 97 THEN 'sending' WHEN g %% 100 = 98 THEN 'pending' ELSE 'created' END"
    )
    sms = "g %% 5 <> 0"
    insert_select(
        Notification,
        {
            "id": "gen_random_uuid()",
            "service_id": f"(%(services)s::uuid[])[1 + g %% {SERVICES}]",
            "notification_type": f"CASE WHEN {sms} THEN 'sms' ELSE 'email' END",
            "recipient": f"CASE WHEN {sms} THEN '4477009' || lpad((g %% 100000)::text, 5, '0') "
            "ELSE 'person' || g || '@example.com' END",
            "subject": f"CASE WHEN {sms} THEN '' ELSE 'Your appointment' END",
            "content": "'Benchmark message number ' || g",
            "status": status,
            "sent_by": f"CASE WHEN g %% 100 = 99 THEN NULL WHEN {sms} THEN "
            "(ARRAY['firetext', 'mmg'])[1 + g %% 2] ELSE 'ses' END",
            "client_reference": "CASE WHEN g %% 2 = 0 THEN 'client-ref-' || g END",
            "provider_reference": "CASE WHEN g %% 100 <> 99 THEN 'provider-ref-' || g END",
            "created_at": moment,
            "sent_at": f"CASE WHEN g %% 100 <> 99 THEN {moment} + interval '2 seconds' END",
            "updated_at": f"{moment} + interval '9 seconds'",
        },
        "generate_series(1, %(rows)s) AS g",
        {"services": services, "rows": rows},
    )
    numbered = (
        "(SELECT id, notification_type, sent_by, created_at, recipient, "
        "row_number() OVER () AS g FROM sending_notification) AS n"
    )
    insert_select(
        SendAttempt,
        {
            "notification_id": "n.id",
            "provider": "coalesce(n.sent_by, 'firetext')",
            "started_at": "n.created_at + interval '1 second'",
            "duration_ms": "50 + g %% 400",
            "outcome": "CASE WHEN g %% 50 = 0 THEN 'error' ELSE 'success' END",
            "status_code": "CASE WHEN g %% 50 = 0 THEN 503 END",
            "error": "CASE WHEN g %% 50 = 0 THEN '503 Service unavailable' ELSE '' END",
        },
        numbered,
    )
    outcome_kind = "g %% 100"
    insert_select(
        Receipt,
        {
            "provider": "CASE WHEN n.notification_type = 'email' THEN 'ses' "
            "ELSE coalesce(n.sent_by, 'mmg') END",
            "body": "'mobile=' || n.recipient || '&status=0&code=000&reference=' || n.id",
            "content_type": "'application/x-www-form-urlencoded'",
            "received_at": "n.created_at + interval '5 seconds'",
            "state": f"CASE WHEN {outcome_kind} < 95 THEN 'processed' "
            f"WHEN {outcome_kind} < 98 THEN 'rejected' ELSE 'failed' END",
            "reference": f"CASE WHEN {outcome_kind} BETWEEN 90 AND 94 THEN gen_random_uuid()::text "
            "ELSE n.id::text END",
            "outcome": f"CASE WHEN {outcome_kind} < 80 THEN 'now delivered' "
            f"WHEN {outcome_kind} < 90 THEN 'unchanged: already delivered' "
            f"WHEN {outcome_kind} < 95 THEN 'unknown notification' "
            f"WHEN {outcome_kind} < 98 THEN 'Firetext callback failed: status missing' "
            "ELSE 'OperationalError()' END",
            "processed_at": "n.created_at + interval '5 seconds'",
            "attempts": "1",
        },
        numbered,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stats_dailystatistics (service_id, day, sms_requested, sms_delivered, "
            "sms_failed, sms_fragments, emails_requested, emails_delivered, emails_failed) "
            "SELECT service_id, (created_at AT TIME ZONE %s)::date, "
            "count(*) FILTER (WHERE notification_type = 'sms'), "
            "count(*) FILTER (WHERE notification_type = 'sms' AND status = 'delivered'), "
            "count(*) FILTER (WHERE notification_type = 'sms' AND status LIKE '%%failure'), "
            "count(*) FILTER (WHERE notification_type = 'sms'), "
            "count(*) FILTER (WHERE notification_type = 'email'), "
            "count(*) FILTER (WHERE notification_type = 'email' AND status = 'delivered'), "
            "count(*) FILTER (WHERE notification_type = 'email' AND status LIKE '%%failure') "
            "FROM sending_notification GROUP BY 1, 2",
            [settings.TIME_ZONE],
        )
    connection.close()
    with connection.cursor() as cursor:  # outside a transaction: VACUUM needs that
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return time.monotonic() - started


def pages() -> list[tuple[str, str]]:
    """(name, URL) of every page timed; ids and references picked from the tables."""
    from django.utils import timezone

    from receipts.models import Receipt
    from sending.models import Notification, ProviderDetails, Service

    some = Notification.objects.filter(status="technical-failure").order_by("-created_at").first()
    with_refs = Notification.objects.filter(client_reference__isnull=False).first()
    receipt = Receipt.objects.order_by("-id").first()
    service = Service.objects.order_by("name").first()
    firetext = ProviderDetails.objects.get(name="firetext")
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    n, r, a = (
        "/admin/sending/notification/",
        "/admin/callbacks/receipt/",
        "/admin/sending/sendattempt/",
    )
    return [
        ("front page", "/admin/"),
        ("notifications", n),
        ("notifications: technical-failure", f"{n}?status__exact=technical-failure"),
        ("notifications: created", f"{n}?status__exact=created"),
        ("notifications: emails", f"{n}?notification_type__exact=email"),
        ("notifications: provider mmg", f"{n}?provider=mmg"),
        ("notifications: one service", f"{n}?service__id__exact={service.id}"),
        ("notifications: yesterday", f"{n}?day={yesterday}"),
        (
            "notifications: failed texts, mmg, yesterday",
            f"{n}?status__exact=technical-failure&notification_type__exact=sms&provider=mmg"
            f"&day={yesterday}",
        ),
        ("notifications: page 50", f"{n}?p=50"),
        ("notifications: search id", f"{n}?q={some.id}"),
        ("notifications: search client ref", f"{n}?q={with_refs.client_reference}"),
        ("notifications: search provider ref", f"{n}?q={with_refs.provider_reference}"),
        ("notifications: search, no match", f"{n}?q=nothing-like-this"),
        ("notifications: search recipient", f"{n}?q=07700%20900123"),
        ("notifications: waiting for a retry", f"{n}?status__exact=created&waiting=retry"),
        ("notifications: due now", f"{n}?status__exact=created&waiting=due"),
        ("notification page with timeline", f"{n}{some.id}/change/"),
        ("receipts", r),
        ("receipts: processed", f"{r}?outcome=processed"),
        ("receipts: duplicate", f"{r}?outcome=duplicate"),
        ("receipts: unknown notification", f"{r}?outcome=unknown"),
        ("receipts: rejected", f"{r}?outcome=rejected"),
        ("receipts: failed", f"{r}?outcome=failed"),
        ("receipts: mmg", f"{r}?provider__exact=mmg"),
        ("receipts: yesterday", f"{r}?day={yesterday}"),
        ("receipts: search reference", f"{r}?q={some.id}"),
        ("receipt page", f"{r}{receipt.pk}/change/"),
        ("send attempts", a),
        ("send attempts: mmg errors", f"{a}?provider=mmg&outcome__exact=error"),
        ("providers", "/admin/sending/providerdetails/"),
        ("provider page", f"/admin/sending/providerdetails/{firetext.pk}/change/"),
        ("daily statistics", "/admin/stats/dailystatistics/"),
        ("statistics chart", "/admin/statistics/"),
    ]


def page_time(client, url: str, repeat: int) -> dict[str, float]:
    """After one request to warm up, `repeat` requests: the median and slowest wall time, the
    median CPU time of this process (Django's share), the median time PostgreSQL took to answer
    the page's queries, and how many queries one request made."""
    from django.db import connection

    sql: list[float] = []

    def timed(execute, query, params, many, context):
        start = time.perf_counter()
        try:
            return execute(query, params, many, context)
        finally:
            sql.append(time.perf_counter() - start)

    response = client.get(url)
    if response.status_code != 200:
        raise BenchError(f"{url} answered {response.status_code}")
    walls, cpus, sqls = [], [], []
    for _ in range(repeat):
        sql.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(timed):
            client.get(url)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        sqls.append(sum(sql))
    return {
        "walls": walls,
        "median": statistics.median(walls),
        "slowest": max(walls),
        "cpu": statistics.median(cpus),
        "sql": statistics.median(sqls),
        "queries": len(sql),
    }


def main() -> int:
    args = parse_args()
    env = base_env(args.database_url, ALLOWED_HOSTS="testserver")
    database_recreate(args.database_url)
    manage(env, "migrate", "--verbosity", "0")
    django_setup(env)
    from django.contrib.auth import get_user_model
    from django.test import Client

    print(f"filling: {args.rows:,} notifications, send attempts and receipts …", flush=True)
    print(f"filled in {tables_fill(args.rows):.0f} s", flush=True)
    operator = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
    client = Client()
    client.force_login(operator)
    print(
        "\n| page | median | slowest | Django CPU | SQL | queries |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |"
    )
    missed, figures = [], []
    for name, url in pages():
        took = page_time(client, url, args.repeat)
        figures.append(
            figure(
                f"console: {name}",
                value=spread(ms * 1000 for ms in took["walls"]),
                unit="ms",
                target=f"< {TARGET_SECONDS * 1000:.0f} ms at {args.rows:,} rows",
                met=took["median"] < TARGET_SECONDS,
                note=f"Django CPU {took['cpu'] * 1000:.0f} ms, SQL {took['sql'] * 1000:.0f} ms, "
                f"{took['queries']} queries",
            )
        )
        print(
            f"| {name} | {took['median'] * 1000:.0f} ms | {took['slowest'] * 1000:.0f} ms "
            f"| {took['cpu'] * 1000:.0f} ms | {took['sql'] * 1000:.0f} ms | {took['queries']} |",
            flush=True,
        )
        if took["median"] >= TARGET_SECONDS:
            missed.append(name)
    print(
        f"\nmissed (median ≥ {TARGET_SECONDS:g} s): {', '.join(missed)}" if missed else "\nall met"
    )
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    results_write(args.json, "console_lists", figures, rows=args.rows, repeat=args.repeat)
    return 1 if missed else 0


if __name__ == "__main__":
    run(main)
