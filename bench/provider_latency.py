"""Delivery at real provider latency: the fake providers answer every send in --latency seconds
(200 ms by default), against the same deliveries answered at once, in one run.

Everything runs here over loopback: PostgreSQL (the benchmark's own database, dropped and made
again; its name must contain "bench"), Redis (the queue purged before and after each phase),
the fake providers (`runfakeproviders`, their latency set through `/_control`), `qcluster`s and,
for the end-to-end phase, gunicorn. Phases:

1. **Sweep** (how latency is hidden, chosen by measurement): for each mechanism, N texts are
   made (in SQL, their tasks queued as the API queues them) with no cluster running, then the
   cluster(s) start and the rate created → `sending` is read from the texts' `sent_at` (over
   at most --window seconds, from the text a tenth of the way in, past the cluster's start),
   at latency 0 and at --latency. Mechanisms: `Q_WORKERS=w` for each w of --workers (worker
   processes), and `threads`: 2 workers whose tasks each send --batch texts from a thread pool
   (`deliver_batch` below: the alternative, which needs batched tasks).
   Memory: PSS (and RSS) summed over each cluster's processes, read from /proc at the end.
2. **Scale-out**: two clusters on the one Redis against one, at --latency, at the default
   Q_WORKERS and at the chosen setting.
3. **Backlog**: --backlog texts (made in SQL, their tasks queued) wait; the time of a claim
   (`notification_claim` on spare texts, from this process) is read with the table idle, with
   the backlog waiting and while it drains; the drain rate over --window seconds is compared
   with the sweep's rate at the same setting.
4. **End to end**: gunicorn and a cluster at the chosen setting, the fakes answering in
   --latency and posting a `delivered` receipt at once; texts posted to
   `POST /notifications/sms` at a steady --rate; the figure is `updated_at - created_at` of
   each delivered text (API accept to `delivered`).

    .venv/bin/python bench/provider_latency.py            # --quick for a smoke check, --help

Targets: at --latency, the chosen setting's rate >= 0.8 of the better rate at latency 0 (default
or chosen setting); two clusters >= 1.8 x one; the backlog's median claim <= 1.2 x idle and its
drain rate >= 0.8 x the sweep's; end-to-end p95 < 500 ms. Exit status 0 when all are met, 1
when one is missed, 2 when the run went wrong.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.common import (  # noqa: E402
    ROOT,
    BenchError,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    delivery_env,
    django_setup,
    figure,
    gunicorn_start,
    insert_select,
    manage,
    process_tree,
    results_arguments,
    results_write,
    run,
    spread,
)

RATIO_TARGET = 0.8
SCALE_TARGET = 1.8
CLAIM_TARGET = 1.2
P95_TARGET_MS = 500
DEFAULT_WORKERS = 2
BATCH_TASK = "bench.provider_latency.deliver_batch"


def deliver_batch(notification_ids: list[str], threads: int) -> None:
    """The thread-pool alternative: one task sends several texts at once, each through the
    service's own `deliver_sms` (claim, provider call, record), each thread on its own
    database connection."""
    from django.db import connection

    from sending.tasks import deliver_sms

    def one(notification_id: str) -> None:
        try:
            deliver_sms(notification_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, notification_ids))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("latency"))
    parser.add_argument("--redis-url", default=bench_redis_url(13))
    parser.add_argument("--cluster-name", default="notify-bench-latency")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per send")
    parser.add_argument("--workers", default="2,16,32", help="Q_WORKERS values to sweep")
    parser.add_argument("--chosen", type=int, default=None, help="Q_WORKERS (default: fastest)")
    parser.add_argument("--batch", type=int, default=16, help="texts per task, threads variant")
    parser.add_argument("--texts", type=int, default=1500, help="texts per sweep phase")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured at most")
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=200, help="claims timed per state")
    parser.add_argument("--rate", type=float, default=50.0, help="texts/s, end to end")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds, end to end")
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.workers, args.texts, args.window = "2,16", 400, 8.0
        args.backlog, args.claims, args.duration = 10_000, 50, 6.0
    return args


# --- processes ---------------------------------------------------------------------------------


def memory_mb(pid: int) -> dict[str, float]:
    """PSS and RSS summed over the process and its children, MB (Linux /proc)."""
    totals = {"pss": 0.0, "rss": 0.0}
    for member in process_tree(pid):
        with suppress(OSError):
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("Pss", "Rss"):
                    totals[name.lower()] += int(value.split()[0]) / 1024
    return totals


class Processes:
    """What this benchmark starts, each in its own session, all stopped at the end."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.running: list[subprocess.Popen] = []
        self.count = 0

    def start(self, name: str, env: dict, *argv: str) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        log = self.logdir / f"{self.count:02d}-{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.running.append(process)
        return process, log

    def stop(self, process: subprocess.Popen, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL to its whole session (a cluster stopped with tasks still
        queued can hang; its queue is purged by the caller anyway)."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a worker left behind
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self.running)):
            self.stop(process, timeout=10)


def fakes_start(processes: Processes, env: dict, receipts_to: str = "") -> str:
    _, log = processes.start(
        "fakes", env, "runfakeproviders", "--port", "0", "--receipts-to", receipts_to,
        "--receipt-delay", "0", "--outcomes", "delivered=100", "--threads", "512",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("Fake providers listening on "):
                return line.split()[-1]
        time.sleep(0.1)
    raise BenchError(f"fake providers did not start:\n{log.read_text()}")


def fakes_latency(url: str, seconds: float) -> None:
    body = json.dumps({"slow_rate": 1.0 if seconds else 0.0, "slow_seconds": seconds}).encode()
    request = urllib.request.Request(f"{url}/_control", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:  # loopback
        if answer.status != 200:
            raise BenchError(f"/_control answered {answer.status}")


# --- the database and the queue --------------------------------------------------------------


def queue_purge() -> int:
    from django_q.brokers import get_broker

    broker = get_broker()
    left = broker.queue_size()
    broker.purge_queue()
    return left


def service_new(name: str):
    from sending.models import Service

    return Service.objects.create(name=f"{name} {time.monotonic_ns()}")


def tables_vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) django_q_task, sending_notification")


def sent_times(service) -> list[float]:
    from sending.models import Notification

    return sorted(
        moment.timestamp()
        for moment in Notification.objects.filter(service=service, sent_at__isnull=False)
        .values_list("sent_at", flat=True)
    )  # fmt: skip


def rate_of(times: list[float], window: float) -> float:
    """Completions per second over at most `window` seconds, from the completion a tenth of
    the way in: the first ones come while the cluster is still starting its workers (32 take
    seconds to fork and connect on a loaded machine)."""
    times = times[len(times) // 10 :]
    if len(times) < 2:
        raise BenchError("fewer than two texts reached sending: no rate")
    inside = [t for t in times if t <= times[0] + window]
    if len(inside) < 2:
        raise BenchError("fewer than two texts reached sending: no rate")
    return (len(inside) - 1) / (inside[-1] - inside[0])


# --- phases ----------------------------------------------------------------------------------


def cluster_env(env: dict, workers: int) -> dict:
    return {**env, "Q_WORKERS": str(workers)}


def deliveries_measure(args, processes, env, fake_url, *, workers, latency, clusters=1,
                       threads=None) -> dict:  # fmt: skip
    """N texts waiting, then `clusters` clusters of `workers` start; rate and memory."""
    fakes_latency(fake_url, latency)
    service, ids = texts_load(args.texts, name="sweep", queue=threads is None)
    if threads is not None:
        from django_q.tasks import async_task

        for start in range(0, len(ids), args.batch):
            async_task(BATCH_TASK, ids[start : start + args.batch], threads)
    tables_vacuum()
    started = time.monotonic()
    running = []
    for number in range(clusters):
        process, log = processes.start(f"qcluster-{workers}w-{number}", cluster_env(env, workers),
                                       "qcluster")  # fmt: skip
        running.append((process, log))
    expected = len(ids)
    first_seen = None
    memory = {}
    while time.monotonic() - started < args.window * 3 + 60:
        done = len(sent_times(service))
        if done and first_seen is None:
            first_seen = time.monotonic()
        if done >= expected or (first_seen and time.monotonic() - first_seen > args.window):
            break
        time.sleep(0.25)
    for process, _ in running:
        for key, value in memory_mb(process.pid).items():
            memory[key] = memory.get(key, 0) + value
    for process, _ in running:
        processes.stop(process)
    queue_purge()
    times = sent_times(service)
    if first_seen is None:
        raise BenchError(f"no text was sent with {workers} workers: {running[0][1]}")
    return {
        "workers": workers,
        "threads": threads,
        "latency": latency,
        "clusters": clusters,
        "rate": rate_of(times, args.window),
        "sent": len(times),
        "pss_mb": memory.get("pss", 0) / clusters,
        "rss_mb": memory.get("rss", 0) / clusters,
    }


def claims_time(count: int) -> dict:
    """The engine's claim (`deliveries_claim`) of one text, on `count` spare texts (made, not
    queued), timed here; ms."""
    from sending.engine import deliveries_claim
    from sending.models import Notification

    service = service_new("claims")
    spares = Notification.objects.bulk_create(
        Notification(service=service, notification_type="sms", recipient="447700900123",
                     content="Spare text")
        for _ in range(count)
    )  # fmt: skip
    ids = [str(spare.id) for spare in spares]
    took = []
    for notification_id in ids:
        started = time.perf_counter()
        if not deliveries_claim(Notification.objects.filter(id=notification_id), batch=1):
            raise BenchError("a spare text could not be claimed")
        took.append((time.perf_counter() - started) * 1000)
    Notification.objects.filter(id__in=ids).update(status="technical-failure", lease_until=None)
    cuts = statistics.quantiles(took, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(took)}


def texts_load(count: int, *, name: str = "backlog", queue: bool = True) -> tuple:
    """`count` created texts of a new service in one INSERT … SELECT, queued (`queued_at`) and,
    with `queue`, their channel's drain asked for, without a cluster running. Much faster than
    `notification_create` on a loaded machine, and the same rows for a drain."""
    from sending.engine import delivery_drain_request
    from sending.models import Notification

    service = service_new(name)
    known = {
        "id": "gen_random_uuid()", "service_id": "%(service)s", "notification_type": "'sms'",
        "recipient": "'447700900123'", "content": "'Backlog text ' || g", "status": "'created'",
        "created_at": "now()", "updated_at": "now()", "queued_at": "now()", "fragment_count": "1",
    }  # fmt: skip
    insert_select(
        Notification, known, f"generate_series(1, {int(count)}) AS g", {"service": str(service.id)}
    )
    ids = [
        str(i) for i in Notification.objects.filter(service=service).values_list("id", flat=True)
    ]
    if queue:
        delivery_drain_request("sms")
    return service, ids


def backlog_measure(args, processes, env, fake_url, workers: int) -> dict:
    fakes_latency(fake_url, args.latency)
    idle = claims_time(args.claims)
    started = time.monotonic()
    service, _ = texts_load(args.backlog)
    print(f"backlog: {args.backlog:,} texts made and queued in {time.monotonic() - started:.0f} s",
          flush=True)  # fmt: skip
    waiting = claims_time(args.claims)
    process, _ = processes.start(f"qcluster-backlog-{workers}w", cluster_env(env, workers),
                                 "qcluster")  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(sent_times(service)) < 2:
        time.sleep(0.25)
    draining = {}
    timer = threading.Thread(target=lambda: draining.update(claims_time(args.claims)))
    timer.start()
    time.sleep(args.window)
    timer.join(timeout=120)
    processes.stop(process)
    left = queue_purge()
    times = sent_times(service)
    return {
        "idle": idle,
        "waiting": waiting,
        "draining": draining,
        "rate": rate_of(times, args.window),
        "sent": len(times),
        "left": left,
    }


def end_to_end(args, processes, env, workers: int) -> dict:
    """gunicorn + a cluster + fakes posting receipts at once; texts at a steady rate."""
    import http.client

    from sending.models import Notification

    workdir = processes.logdir
    key = manage(env, "create_api_key", f"End to end {time.monotonic_ns()}").strip().split()[-1]
    gunicorn_args = argparse.Namespace(workers=2, worker_class="sync", threads=1)
    web_env = {**env, "ALLOWED_HOSTS": "127.0.0.1", "API_RATE_LIMIT": "100000000/sec",
               "LOG_LEVEL": "WARNING"}  # fmt: skip
    server, base = gunicorn_start(gunicorn_args, web_env, workdir / "gunicorn.log")
    processes.running.append(server)
    fake_url = fakes_start(processes, env, receipts_to=base)
    fakes_latency(fake_url, args.latency)
    cluster_env_ = cluster_env({**env, "FIRETEXT_URL": f"{fake_url}/firetext",
                                "MMG_URL": f"{fake_url}/mmg"}, workers)  # fmt: skip
    processes.start("qcluster-e2e", cluster_env_, "qcluster")
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps({"phone_number": "07700 900123", "content": "Your code is 123456"})
    local = threading.local()
    ids, failures = [], []

    def post() -> None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            local.conn.request("POST", "/notifications/sms", body,
                               {"Content-Type": "application/json",
                                "Authorization": f"Bearer {key}"})  # fmt: skip
            answer = local.conn.getresponse()
            data = answer.read()
            if answer.status == 201:
                ids.append(json.loads(data)["id"])
            else:
                failures.append(answer.status)
        except OSError as err:
            failures.append(repr(err))
            local.conn.close()
            del local.conn

    post()  # a warm-up text: the cluster is up once it is delivered
    deadline = time.monotonic() + 120
    while not Notification.objects.filter(id__in=ids, status="delivered").exists():
        if time.monotonic() > deadline or failures:
            raise BenchError(f"end to end: the warm-up text was not delivered ({failures})")
        time.sleep(0.2)
    ids.clear()
    count = round(args.rate * args.duration)
    behind = 0.0
    with ThreadPoolExecutor(max_workers=16) as pool:
        start = time.monotonic()
        for number in range(count):
            pause = start + number / args.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                behind = max(behind, -pause)
            pool.submit(post)
        offered = count / (time.monotonic() - start)
    deadline = time.monotonic() + 120
    delivered = Notification.objects.filter(id__in=ids, status="delivered")
    while time.monotonic() < deadline and delivered.count() < len(ids):
        time.sleep(0.5)
    latencies = sorted(
        (updated - created).total_seconds() * 1000
        for created, updated in delivered.values_list("created_at", "updated_at")
    )
    queue_purge()
    if failures or len(latencies) < len(ids) or not latencies:
        raise BenchError(
            f"end to end: {len(failures)} failed requests ({failures[:3]}), "
            f"{len(latencies)} of {len(ids)} delivered"
        )
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"count": len(ids), "offered": offered, "behind_ms": behind * 1000,
            "p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": latencies[-1]}  # fmt: skip


# --- the run ---------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    env = delivery_env(args)
    logdir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    processes = Processes(logdir)
    load_before = os.getloadavg()
    try:
        database_recreate(args.database_url)
        manage(env, "migrate", "--verbosity", "0")
        fake_url = fakes_start(processes, env)
        env.update(FIRETEXT_URL=f"{fake_url}/firetext", MMG_URL=f"{fake_url}/mmg")
        django_setup(env)
        import logging

        logging.getLogger("django-q").setLevel(logging.WARNING)  # a line per task queued
        queue_purge()
        outcome = phases(args, processes, env, fake_url)
    finally:
        processes.stop_all()
        if "django_q.brokers" in sys.modules:
            queue_purge()
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in load_before)}")
    print(f"logs: {logdir}")
    return outcome


def phases(args, processes, env, fake_url) -> int:
    workers = [int(w) for w in args.workers.split(",")]
    sweep = []

    def measure(**kwargs) -> dict:
        result = deliveries_measure(args, processes, env, fake_url, **kwargs)
        label = (f"{result['clusters']} × " if result["clusters"] > 1 else "") + (
            f"{result['workers']} workers × {result['threads']} threads"
            if result["threads"] else f"Q_WORKERS={result['workers']}"
        )  # fmt: skip
        result["label"] = label
        print(f"{label:<32} latency {result['latency'] * 1000:>4.0f} ms: "
              f"{result['rate']:>6.1f} texts/s ({result['sent']} sent), "
              f"PSS {result['pss_mb']:.0f} MB, RSS {result['rss_mb']:.0f} MB per cluster",
              flush=True)  # fmt: skip
        return result

    for latency in (0.0, args.latency):
        for count in workers:
            sweep.append(measure(workers=count, latency=latency))
        sweep.append(measure(workers=DEFAULT_WORKERS, latency=latency, threads=args.batch))

    def rate(count, latency, threads=None):
        return next(r for r in sweep if (r["workers"], r["latency"], r["threads"]) ==
                    (count, latency, threads))  # fmt: skip

    slow = [r for r in sweep if r["latency"] == args.latency and r["threads"] is None]
    chosen = args.chosen or max(slow, key=lambda r: r["rate"])["workers"]
    fast_best = max(rate(DEFAULT_WORKERS, 0.0)["rate"], rate(chosen, 0.0)["rate"])
    hidden = rate(chosen, args.latency)
    hidden_ratio = hidden["rate"] / fast_best
    threads = rate(DEFAULT_WORKERS, args.latency, args.batch)
    print(
        f"chosen: Q_WORKERS={chosen}: {hidden['rate']:.1f} texts/s at "
        f"{args.latency * 1000:.0f} ms vs {fast_best:.1f} at once: {hidden_ratio:.2f}"
    )

    scale = []
    for count in sorted({DEFAULT_WORKERS, chosen}):
        one = rate(count, args.latency)
        two = measure(workers=count, latency=args.latency, clusters=2)
        scale.append({"workers": count, "one": one["rate"], "two": two["rate"],
                      "ratio": two["rate"] / one["rate"]})  # fmt: skip
        print(
            f"scale-out at Q_WORKERS={count}: {two['rate']:.1f} vs {one['rate']:.1f}: "
            f"{two['rate'] / one['rate']:.2f}",
            flush=True,
        )

    backlog = backlog_measure(args, processes, env, fake_url, chosen)
    claim_ratio = backlog["waiting"]["p50"] / backlog["idle"]["p50"]
    drain_claim_ratio = backlog["draining"]["p50"] / backlog["idle"]["p50"]
    drain_ratio = backlog["rate"] / hidden["rate"]
    for state in ("idle", "waiting", "draining"):
        c = backlog[state]
        print(f"claim, {state:<8}: p50 {c['p50']:.2f} ms, p95 {c['p95']:.2f}, p99 {c['p99']:.2f},"
              f" max {c['max']:.2f}")  # fmt: skip
    print(
        f"backlog drain: {backlog['rate']:.1f} texts/s over {args.window:.0f} s "
        f"({backlog['sent']:,} sent, {backlog['left']:,} tasks left, purged): {drain_ratio:.2f}"
    )

    e2e = end_to_end(args, processes, env, chosen)
    print(f"end to end at {e2e['offered']:.1f}/s ({e2e['count']} texts; pacer at most "
          f"{e2e['behind_ms']:.0f} ms behind): p50 {e2e['p50']:.0f} ms, p95 {e2e['p95']:.0f}, "
          f"p99 {e2e['p99']:.0f}, max {e2e['max']:.0f}")  # fmt: skip

    ms = f"{args.latency * 1000:.0f} ms"
    main_scale = next(s for s in scale if s["workers"] == DEFAULT_WORKERS)
    figures = [
        figure(
            f"delivery at {ms} latency, Q_WORKERS={chosen}",
            value=spread([hidden["rate"]]),
            unit="texts/s",
            baseline="answered at once (better of Q_WORKERS=2 and the chosen)",
            baseline_value=spread([fast_best]),
            ratio=spread([hidden_ratio]),
            target=f">= {RATIO_TARGET}",
            met=hidden_ratio >= RATIO_TARGET,
            note=f"memory per qcluster: PSS {hidden['pss_mb']:.0f} MB (RSS "
            f"{hidden['rss_mb']:.0f}) at Q_WORKERS={chosen}, PSS "
            f"{rate(DEFAULT_WORKERS, args.latency)['pss_mb']:.0f} MB at 2; Q_WORKERS=2 at {ms}: "
            f"{rate(DEFAULT_WORKERS, args.latency)['rate']:.1f}/s; thread pool (2 workers × "
            f"{args.batch} threads) at {ms}: {threads['rate']:.1f}/s, PSS {threads['pss_mb']:.0f}"
            f" MB; sweep: "
            + ", ".join(
                f"{r['label']} {r['rate']:.0f}/s" for r in sweep if r["latency"] == args.latency
            ),
        ),
        *(
            figure(
                f"two qclusters vs one at {ms}, Q_WORKERS={s['workers']}",
                value=spread([s["two"]]),
                unit="texts/s",
                baseline="one qcluster",
                baseline_value=spread([s["one"]]),
                ratio=spread([s["ratio"]]),
                target=f">= {SCALE_TARGET}",
                met=s["ratio"] >= SCALE_TARGET,
            )
            for s in scale
        ),
        figure(
            f"claim with {args.backlog:,} texts waiting (median)",
            value=spread([backlog["waiting"]["p50"]]),
            unit="ms",
            baseline="idle table",
            baseline_value=spread([backlog["idle"]["p50"]]),
            ratio=spread([claim_ratio]),
            target=f"<= {CLAIM_TARGET}",
            met=claim_ratio <= CLAIM_TARGET,
            latency_ms={k: backlog["waiting"][k] for k in ("p50", "p95", "p99")},
            note=f"p99 {backlog['waiting']['p99']:.2f} vs {backlog['idle']['p99']:.2f} ms idle; "
            f"while draining p50 {backlog['draining']['p50']:.2f} ms "
            f"({drain_claim_ratio:.2f} × idle), p99 {backlog['draining']['p99']:.2f}",
        ),
        figure(
            f"backlog drain, first {args.window:.0f} s of {args.backlog:,}",
            value=spread([backlog["rate"]]),
            unit="texts/s",
            baseline=f"sweep at {ms}, Q_WORKERS={chosen}",
            baseline_value=spread([hidden["rate"]]),
            ratio=spread([drain_ratio]),
            target=f">= {RATIO_TARGET}",
            met=drain_ratio >= RATIO_TARGET,
        ),
        figure(
            f"end to end, API accept to delivered, {args.rate:g}/s",
            value=spread([e2e["p95"]]),
            unit="ms p95",
            target=f"p95 < {P95_TARGET_MS} ms",
            met=e2e["p95"] < P95_TARGET_MS,
            latency_ms={k: e2e[k] for k in ("p50", "p95", "p99")},
            note=f"{e2e['count']} texts at {e2e['offered']:.1f}/s, fakes answering in {ms} and "
            f"posting receipts at once, Q_WORKERS={chosen}; max {e2e['max']:.0f} ms",
        ),
    ]
    results_write(args.json, "provider_latency", figures, sweep=sweep, scale=scale,
                  backlog=backlog, end_to_end=e2e, chosen=chosen)  # fmt: skip
    met = [
        hidden_ratio >= RATIO_TARGET,
        main_scale["ratio"] >= SCALE_TARGET,
        claim_ratio <= CLAIM_TARGET,
        drain_ratio >= RATIO_TARGET,
        e2e["p95"] < P95_TARGET_MS,
    ]
    return 0 if all(met) else 1


if __name__ == "__main__":
    run(main)
