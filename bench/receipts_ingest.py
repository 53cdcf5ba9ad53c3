"""How fast Firetext receipts are taken in: `POST /notifications/sms/firetext` against a plain
Django view that makes the same writes (bench/baselines.py: the raw body stored, the same
status change and statistics upsert, in one statement; no DRF, parsing or log line), with
10,000 and with 1,000,000 notifications in the table.

For each table size the benchmark's own PostgreSQL database is filled by SQL (generate_series),
gunicorn (2 sync workers) serves both paths, and wrk loads them over loopback in alternating
rounds of a bounded time: the same-work view, then receipts, each request for a different
notification that is still `sending` (so each one really changes a status and counts it).
After each of them every receipt must be stored and processed and each notification delivered
and counted once; then the notifications go back to `sending` for the next. CPU per request
is read from /proc.

    .venv/bin/python bench/receipts_ingest.py                  # both sizes

The receipt view stores the receipt and asks for the inbox drain, which a qcluster (2 workers,
Redis broker) runs beside gunicorn on the same cores: after each round the benchmark waits until
every receipt is applied, and reports that time and the end-to-end rate.

Then, at each size, receipts are posted at a steady rate (--paced-rate, 500/s by default, from a
few client threads, each receipt at its planned moment) for --paced-seconds: the latency from each
receipt's 200 (read by the client) to its status change (the receipt's `processed_at`, written in
the transaction that changed the status) is reported as p50, p95 and the worst.

Targets: the receipt rate is at least 0.6 of the same-work view's (median of
the rounds' ratios), a receipt
costs at most 1.2× as much with 1,000,000 notifications as with 10,000, and at the paced rate
95% of receipts change their status within 1 s of their 200 (issue 21). Exit status 0 when both
are met, 1 when one is missed, 2 when the run itself went wrong. The database named by
--database-url is dropped and made again, so its name must contain "bench".
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The repository root: bench.common.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    BenchError,
    CpuMeter,
    base_env,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    django_setup,
    figure,
    gunicorn_arguments,
    gunicorn_pids,
    gunicorn_start,
    insert_select,
    manage,
    manage_start,
    queue_purge,
    results_arguments,
    results_write,
    run,
    spread,
    wrk_ensure,
)
from bench.common import wrk_run as wrk_run_script  # noqa: E402

TARGET_RATIO = 0.6
TARGET_GROWTH = 1.2
TARGET_P95_S = 1.0
SERVICES = 10
RECEIPT_PATH = "/notifications/sms/firetext"
BASELINE_PATH = "/bench/same-work/receipt"

# wrk posts one receipt per id of BENCH_IDS, in order, for a bounded time (wrk runs for its
# whole --duration whatever a script does, so the count can't be the bound), to the receipt
# endpoint or to its same-work view alike. The last line is for this script.
WRK_LUA = r"""
function init(args)
  ids = {}
  for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
  next_index = 1
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
end

function request()
  -- past the end it starts again: the check after the round then fails the run
  local id = ids[(next_index - 1) % #ids + 1]
  next_index = next_index + 1
  return wrk.format("POST", nil, headers,
    "mobile=447700900123&status=0&time=2026-11-28+14%3A17%3A00&reference=" .. id)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("receipts"))
    parser.add_argument("--redis-url", default=bench_redis_url(12), help="the broker")
    parser.add_argument("--sizes", default="10000,1000000", help="notifications in the table")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measured rounds")
    parser.add_argument("--seconds", type=int, default=5, help="per target per round")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per target, unmeasured")
    parser.add_argument(
        "--id-pool", type=int, default=50_000, help="notifications receipts are drawn from"
    )
    gunicorn_arguments(parser)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--paced-rate", type=int, default=500, help="receipts/s, 0: none")
    parser.add_argument("--paced-seconds", type=int, default=10)
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.seconds, args.warmup = "10000,100000", 1, 3, 1
    return args


# --- the database ---------------------------------------------------------------------------


def environment(args) -> dict[str, str]:
    env = base_env(
        args.database_url,
        ALLOWED_HOSTS="127.0.0.1",
        Q_CLUSTER_NAME="notify-bench-receipts",
        Q_WORKERS="2",
    )
    env.pop("CALLBACK_BASIC_AUTH", None)
    env["REDIS_URL"] = args.redis_url
    return env


def notifications_load(count: int) -> float:
    """Empty the tables, then `count` SMS notifications, `sending`, made in the last 7 days
    across SERVICES services, each with the Firetext send attempt that sent it (a receipt
    applies only to a notification its provider was called for) and their statistics rows; one
    INSERT … SELECT from generate_series. Columns come from the model, so fields added later get
    their defaults."""
    from django.conf import settings
    from django.db import connection

    from sending.models import Notification, SendAttempt, Service

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE sending_notification, stats_dailystatistics, callbacks_receipt, "
            "sending_service CASCADE"
        )
    services = [Service.objects.create(name=f"Bench service {n}").id for n in range(SERVICES)]
    moment = "now() - (g %% 604800) * interval '1 second'"
    known = {
        "id": "gen_random_uuid()",
        "service_id": f"(%(services)s::uuid[])[1 + g %% {SERVICES}]",
        "notification_type": "'sms'",
        "recipient": "'4477009' || lpad((g %% 100000)::text, 5, '0')",
        "content": "'Benchmark message number ' || g",
        "status": "'sending'",
        "sent_by": "'firetext'",
        "fragment_count": "1",
        "created_at": moment,
        "sent_at": f"{moment} + interval '2 seconds'",
        "updated_at": f"{moment} + interval '2 seconds'",
    }
    zone = settings.TIME_ZONE
    # Every counter column: the texts requested (and their one part each), the rest at 0.
    from stats.models import DailyStatistics

    counts = {
        field.column: "count(*)" if field.column in ("sms_requested", "sms_fragments") else "0"
        for field in DailyStatistics._meta.concrete_fields
        if field.column not in ("id", "service_id", "day")
    }
    with connection.cursor() as cursor:
        insert_select(
            Notification, known, f"generate_series(1, {int(count)}) AS g", {"services": services}
        )
        attempt = {
            "notification_id": "n.id",
            "provider": "n.sent_by",
            "started_at": "n.sent_at - interval '1 second'",
            "duration_ms": "100",
            "outcome": "'success'",
        }
        insert_select(SendAttempt, attempt, "sending_notification AS n")
        cursor.execute(
            f"INSERT INTO stats_dailystatistics (service_id, day, {', '.join(counts)}) "  # noqa: S608
            f"SELECT service_id, (created_at AT TIME ZONE %s)::date, "
            f"{', '.join(counts.values())} FROM sending_notification GROUP BY 1, 2",
            [zone],
        )
    connection.close()
    with connection.cursor() as cursor:  # outside a transaction: VACUUM needs that
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return time.monotonic() - started


def receipt_ids(count: int) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM sending_notification ORDER BY random() LIMIT %s", [count])
        return [str(row[0]) for row in cursor.fetchall()]


def outcome_check() -> dict:
    """Every receipt stored and processed, each for a different notification, each of those
    delivered once and counted once (read in one statement, once the requests wrk left in
    flight have finished)."""
    from django.db import connection

    connection.close()
    with connection.cursor() as cursor:
        settled, last = time.monotonic() + 10, None
        while time.monotonic() < settled:
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE state <> 'processed') "
                "FROM callbacks_receipt"
            )
            now = cursor.fetchone()
            if now == last and now[1] == 0:
                break
            last = now
            time.sleep(0.5)
        cursor.execute(
            "SELECT (SELECT count(*) FROM callbacks_receipt), "
            "(SELECT count(DISTINCT reference) FROM callbacks_receipt), "
            "(SELECT count(*) FROM callbacks_receipt WHERE state <> 'processed'), "
            "(SELECT count(*) FROM sending_notification WHERE status = 'delivered'), "
            "(SELECT coalesce(sum(sms_delivered), 0) FROM stats_dailystatistics)"
        )
        receipts, distinct, unprocessed, delivered, counted = cursor.fetchone()
    problems = []
    if unprocessed:
        problems.append(f"{unprocessed} receipts not processed")
    if not receipts == distinct == delivered == counted:
        problems.append(
            f"{receipts} receipts for {distinct} notifications, {delivered} delivered, "
            f"{counted} counted"
        )
    return {"receipts": receipts, "delivered": delivered, "problems": problems}


# --- servers and load --------------------------------------------------------------------------


def server_pids(server: subprocess.Popen) -> dict[str, list[int]]:
    """gunicorn (master and workers) and the PostgreSQL backends serving this database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        backends = [pid for (pid,) in cursor.fetchall()]
    return {"app": gunicorn_pids(server), "db": backends}


def wrk_measured(wrk, args, workdir, server, url, seconds, ids) -> dict:
    """A wrk run, with the CPU gunicorn and PostgreSQL spent per answered request."""
    pids = server_pids(server)
    meter = CpuMeter(pids)
    result = wrk_run(wrk, args, workdir, url, seconds, ids)
    for group, used in meter.used().items():
        result[f"{group}_cpu_ms"] = used * 1000 / max(result["requests"], 1)
    return result


def wrk_run(wrk, args, workdir: Path, url: str, seconds: int, ids) -> dict:
    ids_file = workdir / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    env = {**os.environ, "BENCH_IDS": str(ids_file)}
    result = wrk_run_script(
        wrk, workdir / "bench.lua", url, seconds,
        connections=args.connections, threads=1, env=env, slack=60,
    )  # fmt: skip
    if result["non_2xx"] or result["socket_errors"]:
        raise BenchError(f"{url}: {result} has errors: the rate is not real")
    return result


def unprocessed_count() -> int:
    from django.db import connection

    from receipts.models import Receipt

    connection.close()
    return Receipt.objects.exclude(state="processed").count()


# --- the run -----------------------------------------------------------------------------------


def measure_size(args, env, wrk, workdir: Path, size: int) -> dict:
    print(f"\n== {size:,} notifications", flush=True)
    print(f"loaded in {notifications_load(size):.1f} s", flush=True)
    ids = receipt_ids(min(size, args.id_pool))
    shuffle = random.Random(size)
    qcluster = server = None
    bare, receipts, drains, checked = [], [], [], 0
    try:
        # The inbox drain runs in the cluster's workers, beside gunicorn on the same cores.
        qcluster = manage_start(env, workdir / "qcluster.log", "qcluster")
        app = "bench.baselines:application()"
        server, base = gunicorn_start(args, env, workdir / f"gunicorn-{size}.log", app)
        for n in range(args.rounds + 1):  # round 0 warms up
            seconds = args.seconds if n else args.warmup
            for runs, path in ((bare, BASELINE_PATH), (receipts, RECEIPT_PATH)):
                shuffle.shuffle(ids)
                runs.append(wrk_measured(wrk, args, workdir, server, base + path, seconds, ids))
                if path == RECEIPT_PATH:
                    drains.append(drain_wait())
                check = outcome_check()
                if check["problems"]:
                    raise BenchError(f"{size}, round {n}, {path}: {'; '.join(check['problems'])}")
                checked += check["receipts"]
                round_reset()
            print(
                f"round {n}{' (warm-up)' if not n else ''}: same-work {bare[-1]['rate']:.0f} "
                f"req/s, receipts {receipts[-1]['rate']:.0f} req/s"
                + (f", then {drains[-1]:.1f} s until all processed" if n else ""),
                flush=True,
            )
        paced = paced_measure(args, base, ids, shuffle) if args.paced_rate else None
    finally:
        for process in (server, qcluster):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
    bare, receipts, drains = bare[1:], receipts[1:], drains[1:]
    receipt_rate = statistics.median(r["rate"] for r in receipts)
    bare_rate = statistics.median(r["rate"] for r in bare)
    return {
        "size": size,
        "bare": bare_rate,
        "receipts": receipt_rate,
        "ratio": receipt_rate / bare_rate,
        "cost_ms": 1000 / receipt_rate,
        "bare_p50_ms": statistics.median(r["p50_us"] for r in bare) / 1000,
        "receipt_p50_ms": statistics.median(r["p50_us"] for r in receipts) / 1000,
        "receipt_p99_ms": statistics.median(r["p99_us"] for r in receipts) / 1000,
        "drain_s": statistics.median(drains) if drains else None,
        **{
            f"{target}_{group}_cpu_ms": statistics.median(r[f"{group}_cpu_ms"] for r in runs)
            for target, runs in (("bare", bare), ("receipt", receipts))
            for group in ("app", "db")
        },
        "checked": checked + (paced["receipts"] if paced else 0),
        "paced": paced,
        "spread": {
            "receipts": spread(r["rate"] for r in receipts),
            "baseline": spread(r["rate"] for r in bare),
            "ratio": spread(r["rate"] / b["rate"] for r, b in zip(receipts, bare, strict=True)),
        },
    }


def paced_measure(args, base: str, ids: list[str], shuffle: random.Random) -> dict:
    """Receipts at a steady rate, each posted at its planned moment (start + n / rate) by one of
    a few threads over kept-alive connections; then, once all are applied, the seconds from each
    one's 200 to the transaction that changed its notification's status."""
    import threading
    from datetime import UTC, datetime
    from http.client import HTTPConnection
    from urllib.parse import urlsplit

    from django.db import connection

    shuffle.shuffle(ids)
    count = min(len(ids), args.paced_rate * args.paced_seconds)
    host = urlsplit(base)
    answered: dict[str, float] = {}
    errors: list[str] = []
    next_index = iter(range(count))
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    wall_offset = time.time() - time.monotonic()

    def client() -> None:
        http = HTTPConnection(host.hostname, host.port, timeout=30)
        while True:
            with lock:
                n = next(next_index, None)
            if n is None:
                return
            time.sleep(max(0.0, start + n / args.paced_rate - time.monotonic()))
            body = f"mobile=447700900123&status=0&time=2026-11-28+14%3A17%3A00&reference={ids[n]}"
            http.request(
                "POST", RECEIPT_PATH, body,
                {"Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            response = http.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"{response.status} for {ids[n]}")
            answered[ids[n]] = time.monotonic() + wall_offset

    threads = [threading.Thread(target=client) for _ in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_seconds = time.monotonic() - start
    if errors:
        raise BenchError(f"paced receipts: {len(errors)} errors, first {errors[0]}")
    drain_wait()
    check = outcome_check()
    if check["problems"]:
        raise BenchError(f"paced receipts: {'; '.join(check['problems'])}")
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT reference, processed_at FROM callbacks_receipt")
        applied = dict(cursor.fetchall())
    round_reset()
    latencies = sorted(applied[reference].timestamp() - at for reference, at in answered.items())
    print(
        f"paced: {count} receipts at {count / sent_seconds:.0f}/s (planned {args.paced_rate}/s); "
        f"200 to status change p50 {percentile(latencies, 50):.3f} s, "
        f"p95 {percentile(latencies, 95):.3f} s, worst {latencies[-1]:.3f} s "
        f"(checked {datetime.now(UTC):%H:%M:%S} UTC)",
        flush=True,
    )
    return {
        "receipts": count,
        "rate": count / sent_seconds,
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "max_s": latencies[-1],
    }


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def round_reset() -> None:
    """Put the round's notifications back to `sending`, uncount them and forget the receipts,
    so every round (and every table size) starts from the same state."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sending_notification SET status = 'sending', provider_status_code = '', "
            "provider_status_reason = '' WHERE status = 'delivered'"
        )
        cursor.execute("UPDATE stats_dailystatistics SET sms_delivered = 0")
        cursor.execute("TRUNCATE callbacks_receipt CASCADE")
        cursor.execute("VACUUM ANALYZE sending_notification, stats_dailystatistics")
        cursor.execute("CHECKPOINT")


def drain_wait(timeout: float = 600) -> float:
    """Seconds, after the load stopped, until the stored receipts are all processed by the
    inbox drain."""
    started = time.monotonic()
    while unprocessed_count():
        if time.monotonic() - started > timeout:
            raise BenchError("queued receipts were not processed in time")
        time.sleep(0.1)
    return time.monotonic() - started


def report(args, results: list[dict]) -> bool:
    print(
        f"\ngunicorn {args.workers} {args.worker_class} workers"
        + (f" × {args.threads} threads" if args.worker_class == "gthread" else "")
        + "; wrk 1 thread, "
        f"{args.connections} connections; medians of {args.rounds} rounds of {args.seconds} s "
        f"per target after a warm-up round; {os.cpu_count()} cores"
    )
    print(
        f"{'notifications':>13} {'same-work/s':>11} {'receipts/s':>10} {'ratio':>6} "
        f"{'ms/receipt':>10} {'p50 ms':>7} {'p99 ms':>7} {'same p50':>8}"
        + f" {'drain s':>8} {'end-to-end/s':>12}"
    )
    for r in results:
        line = (
            f"{r['size']:>13,} {r['bare']:>11.0f} {r['receipts']:>10.0f} {r['ratio']:>6.2f} "
            f"{r['cost_ms']:>10.3f} {r['receipt_p50_ms']:>7.1f} {r['receipt_p99_ms']:>7.1f} "
            f"{r['bare_p50_ms']:>8.1f}"
        )
        # End to end: every receipt taken in during the round, then applied by the drain.
        taken = r["receipts"] * args.seconds
        line += f" {r['drain_s']:>8.1f} {taken / (args.seconds + r['drain_s']):>12.0f}"
        print(line)
    print("CPU per request, ms (gunicorn / this database's PostgreSQL backends):")
    for r in results:
        print(
            f"{r['size']:>13,}  same-work {r['bare_app_cpu_ms']:.2f} / {r['bare_db_cpu_ms']:.2f}   "
            f"receipt {r['receipt_app_cpu_ms']:.2f} / {r['receipt_db_cpu_ms']:.2f}"
        )
    paced_met = True
    for r in results:
        if r["paced"]:
            p = r["paced"]
            met = p["p95_s"] < TARGET_P95_S
            paced_met = paced_met and met
            print(
                f"{r['size']:>13,}  paced {p['rate']:.0f} receipts/s: 200 to status change "
                f"p50 {p['p50_s']:.3f} s, p95 {p['p95_s']:.3f} s (target < {TARGET_P95_S} s: "
                f"{'met' if met else 'MISSED'}), worst {p['max_s']:.3f} s"
            )
    checked = sum(r["checked"] for r in results)
    print(f"receipts checked (stored, processed, delivered and counted once): {checked}")
    ratios_met = all(r["ratio"] >= TARGET_RATIO for r in results)
    print(f"ratio receipts/same-work >= {TARGET_RATIO}: {'met' if ratios_met else 'MISSED'}")
    growth_met = True
    if len(results) > 1:
        growth = results[-1]["cost_ms"] / results[0]["cost_ms"]
        growth_met = growth <= TARGET_GROWTH
        print(
            f"cost with {results[-1]['size']:,} / with {results[0]['size']:,}: {growth:.2f} "
            f"(target <= {TARGET_GROWTH}: {'met' if growth_met else 'MISSED'})"
        )
    return ratios_met and growth_met and paced_met


def main() -> int:
    args = parse_args()
    wrk = wrk_ensure()
    env = environment(args)
    database_recreate(args.database_url)
    queue_purge(args.redis_url, "notify-bench-receipts")
    manage(env, "migrate", "--verbosity", "0")
    django_setup(env)
    workdir = Path(tempfile.mkdtemp(prefix="bench-receipts-"))
    (workdir / "bench.lua").write_text(WRK_LUA)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    results = [measure_size(args, env, wrk, workdir, size) for size in sizes]
    met = report(args, results)
    results_write(args.json, "receipts_ingest", figures(args, results))
    print(f"logs: {workdir}")
    return 0 if met else 1


def figures(args, results: list[dict]) -> list[dict]:
    found = [
        figure(
            f"Firetext receipt, {r['size']:,} notifications",
            value=r["spread"]["receipts"],
            unit="req/s",
            baseline="same-work view (/bench/same-work/receipt)",
            baseline_value=r["spread"]["baseline"],
            ratio=r["spread"]["ratio"],
            target=f">= {TARGET_RATIO}",
            met=r["spread"]["ratio"]["median"] >= TARGET_RATIO,
            latency_ms={"p50": r["receipt_p50_ms"], "p99": r["receipt_p99_ms"]},
            note=f"gunicorn CPU {r['receipt_app_cpu_ms']:.2f} ms/receipt vs "
            f"{r['bare_app_cpu_ms']:.2f} same-work; PostgreSQL {r['receipt_db_cpu_ms']:.2f} vs "
            f"{r['bare_db_cpu_ms']:.2f}",
        )
        for r in results
    ]
    if len(results) > 1:
        small, large = results[0], results[-1]
        growth = large["cost_ms"] / small["cost_ms"]
        found.append(
            figure(
                f"receipt cost, {large['size']:,} vs {small['size']:,} notifications",
                value=spread([large["cost_ms"]]),
                unit="ms",
                baseline=f"with {small['size']:,}",
                baseline_value=spread([small["cost_ms"]]),
                ratio=spread([growth]),
                target=f"<= {TARGET_GROWTH}",
                met=growth <= TARGET_GROWTH,
                note="cost = 1 / median receipt rate",
            )
        )
    for r in results:
        if r["paced"]:
            p = r["paced"]
            found.append(
                figure(
                    f"receipt 200 to status change at {p['rate']:.0f}/s, {r['size']:,} "
                    "notifications (p95)",
                    value=spread([p["p95_s"]]),
                    unit="s",
                    target=f"< {TARGET_P95_S}",
                    met=p["p95_s"] < TARGET_P95_S,
                    note=f"p50 {p['p50_s']:.3f} s, worst {p['max_s']:.3f} s",
                )
            )
    return found


if __name__ == "__main__":
    run(main)
