"""Firetext receipts with a status callback for every notification against the same receipts
with callbacks off, and whether the callbacks keep up (contract section 10, issue 11).

PostgreSQL + Redis, gunicorn (2 sync workers) taking `POST /notifications/sms/firetext` from wrk,
a qcluster (`--q-workers`) sending the callbacks, and the fake providers' callback receiver
(`runfakeproviders`, its own process) answering them, all on this machine. Rounds alternate:
callbacks off (no service has one: a receipt writes no event and queues nothing), then on
(every service has one: each receipt writes its event in the receipt's statement and queues
its task). Every receipt is for a different notification still `sending`, so each one really
changes a status. After each round: every receipt stored, processed, delivered and counted once
and, with callbacks on, one event per receipt, each delivered once; then everything is reset.

    .venv/bin/python bench/callbacks_receipts.py          # --rounds 3 --seconds 10 --size 10000

Targets: the receipt rate with callbacks on at least 0.8 of the rate with them off, and the
callbacks delivered at the rate receipts arrive (delivered during the round at least 0.8 of the
receipts taken, the rest within a few seconds after). Exit status 0 when met, 1 when missed, 2
when the run itself went wrong. The database named by --database-url is dropped and made again,
so its name must contain "bench".
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    BenchError,
    base_env,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    django_setup,
    figure,
    free_port,
    gunicorn_arguments,
    gunicorn_start,
    manage,
    manage_start,
    queue_purge,
    results_arguments,
    results_write,
    run,
    spread,
    wrk_ensure,
)
from bench.receipts_ingest import (  # noqa: E402
    RECEIPT_PATH,
    WRK_LUA,
    notifications_load,
    outcome_check,
    receipt_ids,
    round_reset,
    wrk_measured,
)

TARGET_RATIO = 0.8
CLUSTER = "notify-bench-callbacks"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("callbacks"))
    parser.add_argument("--redis-url", default=bench_redis_url(14))
    parser.add_argument("--size", type=int, default=10_000, help="notifications in the table")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target")
    parser.add_argument("--seconds", type=int, default=10, help="per target per round")
    parser.add_argument("--warmup", type=int, default=3, help="seconds per target, unmeasured")
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    gunicorn_arguments(parser)
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.size, args.rounds, args.seconds, args.warmup = 3000, 1, 3, 1
    return args


def callbacks_set(receiver_url: str | None) -> None:
    """Every bench service gets a callback to the receiver (None: no service has one)."""
    from sending.models import Service
    from webhooks.models import ServiceCallback
    from webhooks.services import service_callback_set

    ServiceCallback.objects.all().delete()
    if receiver_url:
        for service in Service.objects.all():
            service_callback_set(service=service, url=receiver_url, bearer_token="bench-token-1")


def callbacks_state() -> dict[str, int]:
    from django.db import connection

    connection.close()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'delivered'), "
            "count(DISTINCT notification_id), "
            "(SELECT count(*) FROM webhooks_callbackattempt WHERE outcome = 'delivered') "
            "FROM webhooks_callbackevent"
        )
        events, delivered, notifications, attempts = cursor.fetchone()
    return {
        "events": events,
        "delivered": delivered,
        "notifications": notifications,
        "delivered_attempts": attempts,
    }


def drain_wait(timeout: float = 300) -> float:
    """Seconds until every event written is delivered."""
    started = time.monotonic()
    while (state := callbacks_state())["delivered"] < state["events"]:
        if time.monotonic() - started > timeout:
            raise BenchError(f"callbacks not all delivered within {timeout} s: {state}")
        time.sleep(0.2)
    return time.monotonic() - started


def callbacks_reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE webhooks_callbackattempt, webhooks_callbackevent")


def measure(args, env, wrk, workdir: Path, receiver_url: str) -> dict:
    print(f"loaded {args.size:,} notifications in {notifications_load(args.size):.1f} s")
    ids = receipt_ids(args.size)
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    qcluster = server = None
    try:
        qcluster = manage_start(env, workdir / "qcluster.log", "qcluster")
        server, base = gunicorn_start(args, env, workdir / "gunicorn.log")
        for n in range(args.rounds + 1):  # round 0 warms up
            seconds = args.seconds if n else args.warmup
            for target in ("off", "on"):
                callbacks_set(receiver_url if target == "on" else None)
                chosen = ids[:]
                result = wrk_measured(
                    wrk, args, workdir, server, base + RECEIPT_PATH, seconds, chosen
                )
                during = callbacks_state()
                check = outcome_check()
                if check["problems"]:
                    raise BenchError(f"{target}, round {n}: {'; '.join(check['problems'])}")
                result["receipts_checked"] = check["receipts"]
                if target == "on":
                    result["delivered_during"] = during["delivered"]
                    result["drain_s"] = drain_wait()
                    check = outcome_check()  # again: requests still queued in gunicorn
                    result["receipts_checked"] = check["receipts"]
                    final = callbacks_state()
                    if not (
                        final["events"] == final["notifications"] == check["receipts"]
                        and final["delivered_attempts"] == check["receipts"]
                    ):
                        raise BenchError(f"round {n}: {final} for {check['receipts']} receipts")
                elif during["events"]:
                    raise BenchError(f"round {n}: {during['events']} events with callbacks off")
                runs[target].append(result)
                round_reset()
                callbacks_reset()
                line = f"round {n}{' (warm-up)' if not n else ''} {target}: {result['rate']:.0f}/s"
                if target == "on":
                    line += (
                        f", {result['delivered_during']} of {check['receipts']} callbacks "
                        f"delivered during it, the rest {result['drain_s']:.1f} s after"
                    )
                print(line, flush=True)
    finally:
        for process in (server, qcluster):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
    off, on = runs["off"][1:], runs["on"][1:]
    return {
        "off": statistics.median(r["rate"] for r in off),
        "on": statistics.median(r["rate"] for r in on),
        "ratios": [b["rate"] / a["rate"] for a, b in zip(off, on, strict=True)],
        "off_rates": [r["rate"] for r in off],
        "on_rates": [r["rate"] for r in on],
        "off_p99_ms": statistics.median(r["p99_us"] for r in off) / 1000,
        "on_p99_ms": statistics.median(r["p99_us"] for r in on) / 1000,
        "kept_up": statistics.median(r["delivered_during"] / r["receipts_checked"] for r in on),
        "drain_s": statistics.median(r["drain_s"] for r in on),
        "checked": sum(r["receipts_checked"] for r in off + on),
    }


def main() -> int:
    args = parse_args()
    wrk = wrk_ensure()
    env = base_env(
        args.database_url,
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=args.redis_url,
        Q_CLUSTER_NAME=CLUSTER,
        Q_WORKERS=str(args.q_workers),
        SERVICE_CALLBACK_ALLOW_INSECURE="true",
        LOG_LEVEL="WARNING",
    )
    env.pop("CALLBACK_BASIC_AUTH", None)
    database_recreate(args.database_url)
    queue_purge(args.redis_url, CLUSTER)
    manage(env, "migrate", "--verbosity", "0")
    django_setup(env)
    workdir = Path(tempfile.mkdtemp(prefix="bench-callbacks-"))
    (workdir / "bench.lua").write_text(WRK_LUA)
    port = free_port()
    receiver = manage_start(
        env, workdir / "receiver.log", "runfakeproviders", "--port", str(port), "--receipts-to", ""
    )
    try:
        time.sleep(2)
        result = measure(args, env, wrk, workdir, f"http://127.0.0.1:{port}/service-callback")
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    ratio = result["on"] / result["off"]
    print(
        f"\ngunicorn {args.workers} {args.worker_class} workers, qcluster {args.q_workers} "
        f"workers, wrk {args.connections} connections, {args.size:,} notifications; medians of "
        f"{args.rounds} rounds of {args.seconds} s per target"
    )
    print(f"receipts/s callbacks off: {result['off']:.0f} (p99 {result['off_p99_ms']:.1f} ms)")
    print(f"receipts/s callbacks on:  {result['on']:.0f} (p99 {result['on_p99_ms']:.1f} ms)")
    print(f"ratio on/off: {ratio:.2f} (target >= {TARGET_RATIO}: "
          f"{'met' if ratio >= TARGET_RATIO else 'MISSED'})")  # fmt: skip
    print(
        f"callbacks delivered while receipts arrived: {result['kept_up']:.2f} of them; "
        f"the rest within {result['drain_s']:.1f} s (target >= {TARGET_RATIO}: "
        f"{'met' if result['kept_up'] >= TARGET_RATIO else 'MISSED'})"
    )
    print(f"receipts checked: {result['checked']}; logs: {workdir}")
    met = ratio >= TARGET_RATIO and result["kept_up"] >= TARGET_RATIO
    results_write(
        args.json,
        "callbacks_receipts",
        [
            figure(
                "Firetext receipt with a status callback each",
                value=spread(result["on_rates"]),
                unit="req/s",
                baseline="the same receipts, callbacks off",
                baseline_value=spread(result["off_rates"]),
                ratio=spread(result["ratios"]),
                target=f">= {TARGET_RATIO}",
                met=ratio >= TARGET_RATIO,
                latency_ms={"p99": result["on_p99_ms"]},
                note=f"{result['kept_up']:.2f} of the callbacks delivered while the receipts "
                f"arrived, the rest within {result['drain_s']:.1f} s",
            )
        ],
    )
    return 0 if met else 1


if __name__ == "__main__":
    run(main)
