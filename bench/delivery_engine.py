"""The delivery engine's targets (issue 22), each beside its baseline, in one run, on PostgreSQL
+ Redis with the fake providers (`runfakeproviders`, their latency set through `/_control`).

The service is reached only through its commands (`qcluster`, `runfakeproviders`,
`create_api_key`), its HTTP API (gunicorn) and its public services (`notifications_create`,
`notification_update_status`, `service_callback_set`), so the same run measures today's
pipeline and the engine that replaces it. The benchmark's own database is dropped and made again
(its name must contain "bench"); the Redis queues are purged before and after each phase, and a
phase's texts left undelivered are failed in SQL so that no later phase's cluster sends them.

1. **CPU per delivered text**: texts made through `notifications_create` while no cluster runs,
   the fakes answering at once and posting no receipts; then one `qcluster` (default settings)
   starts. CPU from the first hand-over (`sent_at`) to a second after the last: the qcluster's
   whole process tree (user + system, and `cutime`/`cstime` for its finished children), this
   database's PostgreSQL backends and the Redis server (shared with others: an upper bound).
2. **Against a bare loop**: the same number of texts, claimed one at a time (one `UPDATE …
   RETURNING` over `FOR UPDATE SKIP LOCKED`), posted to the same fake Firetext over a kept-alive
   `requests.Session` and marked `sending`, in --concurrency threads (the engine's concurrency);
   the engine's rate from phase 1 as a ratio of the loop's, both read from `sent_at`.
3. **At 200 ms provider latency**: texts already made, one `qcluster` at default settings;
   texts/s over at most --window seconds and the PSS of its process tree (`smaps_rollup`).
   Scale-out: two qclusters against one, each started with `scale_out_env` (the engine's
   in-flight limit goes there; while it sets nothing, the one-qcluster figure is phase 3's).
4. **End to end**: gunicorn, a qcluster and the fakes answering in 200 ms and posting receipts at
   once; after an unmeasured warm-up (50 texts at 25/s, all delivered), single texts posted to
   `POST /notifications/sms` at 50/s and at 200/s; p95 from accept
   (`created_at`) to `delivered` (`updated_at`), a text not delivered within --wait counting as
   never, with each stage read from the rows: claimed (the attempt's `started_at`), provider
   answered (`started_at` + `duration_ms`), handed over (`sent_at`), receipt applied
   (`updated_at`).
5. **A burst** of --burst texts through `POST /notifications/sms/batch` (1,000 a request) to a
   running qcluster at 200 ms latency: drain rate over at most --window seconds; time from the
   first accept to the first hand-over.
6. **Status callback CPU**: --callbacks texts of four services with a callback to the fakes'
   receiver, moved to `delivered` (`notification_update_status`) while no cluster runs; then a
   qcluster starts: CPU of its process tree + PostgreSQL + Redis per callback delivered (the
   receiver runs in the fakes' process: left out).

    .venv/bin/python bench/delivery_engine.py           # --quick for a smoke check, --help

Exit status 0 when every target is met, 1 when one is missed, 2 when the run went wrong.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.common import (  # noqa: E402
    BenchError,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    delivery_env,
    django_setup,
    figure,
    gunicorn_start,
    manage,
    process_cpu_seconds,
    process_tree,
    queue_purge,
    results_arguments,
    results_write,
    run,
    spread,
)
from bench.pipeline_throughput import pg_backends  # noqa: E402
from bench.provider_latency import (  # noqa: E402
    Processes,
    fakes_latency,
    fakes_start,
    memory_mb,
    rate_of,
)

CPU_TARGET_MS = 1.8
CPU_TODAY_MS = 6.5  # the figure for the code before the engine
LOOP_RATIO_TARGET = 0.5
LATENCY_RATE_TARGET = 500
PSS_TARGET_MB = 300
SCALE_TARGET = 1.8
E2E_TARGETS_MS = {50: 500, 200: 1000}
BURST_RATE_TARGET = 500
FIRST_HANDOVER_TARGET_S = 1.0
CALLBACK_CPU_TARGET_MS = 2.0
CALLBACK_CPU_TODAY_MS = 8.0  # the "about 8"
CALLBACK_SERVICES = 4
CREATE_CHUNK = 1000  # texts per notifications_create call and per batch request
POLL_SECONDS = 0.1


# --- ENGINE HOOKS: the two settings the engine adds; today they change nothing ---------------


# Each bare-loop thread holds a PostgreSQL connection (the server's `max_connections`, 100 here,
# is shared with everyone), and 32 threads already keep two cores busy.
BARE_LOOP_THREADS_MOST = 32


def engine_concurrency(env: dict[str, str]) -> int:
    """ENGINE HOOK. Provider calls one drain keeps in flight at default settings
    (`DELIVERY_CONCURRENCY`, 128): the bare loop runs this many threads, at most
    `BARE_LOOP_THREADS_MOST`."""
    return min(int(env.get("DELIVERY_CONCURRENCY", "128")), BARE_LOOP_THREADS_MOST)


def scale_out_env(env: dict[str, str]) -> dict[str, str]:
    """ENGINE HOOK. The environment of each qcluster in the scale-out phase, set so that one
    qcluster delivers about 200 texts/s at 200 ms: `DELIVERY_CONCURRENCY` 20 a drain, two drains
    (`Q_WORKERS` 2), 40 calls in flight. Not `FIRETEXT_MAX_IN_FLIGHT`/`MMG_MAX_IN_FLIGHT`: those
    hold every qcluster together to one limit (a provider's cap per account), so two qclusters
    under them deliver what one does, by design."""
    return {**env, "DELIVERY_CONCURRENCY": "20", "Q_WORKERS": "2"}


# --- CPU ---------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process tree so far: each living member's user + system time and its reaped
    children's (`cutime`, `cstime`), so a worker that finished still counts (in its parent)."""
    ticks = 0
    for member in process_tree(pid):
        if fields := _stat_fields(member):
            ticks += sum(int(fields[n]) for n in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def redis_server_pids() -> list[int]:
    """The local redis-server (shared with everyone on this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "redis-server":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class CpuWindow:
    """CPU of the qcluster trees, this database's PostgreSQL backends and Redis between two
    samples. Backends come and go (a worker's connection closes with it), so each counts with
    the last figure seen for it, polled with every `observe`."""

    def __init__(self, cluster_pids: list[int], backends, *, tree: bool = True):
        self.cluster_pids = cluster_pids
        self.tree = tree
        self.backends = backends
        self.redis = redis_server_pids()
        self.pg_seen: dict[int, float] = {}
        self.start: dict | None = None
        self.end: dict | None = None

    def _sample(self, done: int) -> dict:
        for pid in self.backends():
            if fields := _stat_fields(pid):
                self.pg_seen[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        redis = 0.0
        for pid in self.redis:
            if fields := _stat_fields(pid):
                redis += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return {
            "qcluster": sum(
                tree_cpu_seconds(pid) if self.tree else process_cpu_seconds(pid) or 0.0
                for pid in self.cluster_pids
            ),
            "pg": dict(self.pg_seen),
            "redis": redis,
            "done": done,
            "at": time.monotonic(),
        }

    def observe(self, done: int) -> int:
        """Called with the count done so far: the window opens at the first one."""
        if done and self.start is None:
            self.start = self._sample(done)
        elif self.start is not None:
            self.end = self._sample(done)
        return done

    def per_item_ms(self) -> dict[str, float]:
        if self.start is None or self.end is None or self.end["done"] <= self.start["done"]:
            raise BenchError("the CPU window saw no completion after its first")
        items = self.end["done"] - self.start["done"]
        pg = sum(v - self.start["pg"].get(pid, 0.0) for pid, v in self.end["pg"].items())
        used = {
            "qcluster": self.end["qcluster"] - self.start["qcluster"],
            "pg": pg,
            "redis": self.end["redis"] - self.start["redis"],
        }
        used = {name: seconds * 1000 / items for name, seconds in used.items()}
        used["total"] = sum(used.values())
        return used


# --- the database, the queue, the texts -----------------------------------------------------


def service_new(name: str, callback_url: str | None = None):
    from sending.models import Service
    from webhooks.services import service_callback_set

    service = Service.objects.create(name=f"{name} {time.monotonic_ns()}")
    if callback_url:
        service_callback_set(service=service, url=callback_url, bearer_token="bench-token-1")
    return service


def texts_create(service, count: int) -> list:
    """`count` texts through the service's own batch create, 1,000 a transaction (each batch
    asks for its deliveries once committed, as the batch API does)."""
    from sending.services import notifications_create

    ids = []
    for start in range(0, count, CREATE_CHUNK):
        items = [
            {"notification_type": "sms", "recipient": "447700900123",
             "content": f"Your code is {number:06d}"}
            for number in range(start, min(count, start + CREATE_CHUNK))
        ]  # fmt: skip
        ids += [row.id for row in notifications_create(service=service, notifications=items)]
    return ids


def sent_times(service) -> list[float]:
    from sending.models import Notification

    rows = Notification.objects.filter(service=service, sent_at__isnull=False)
    return sorted(moment.timestamp() for moment in rows.values_list("sent_at", flat=True))


def sent_count(service) -> int:
    from sending.models import Notification

    return Notification.objects.filter(service=service, sent_at__isnull=False).count()


def queues_empty(args) -> None:
    """The Redis queues purged, and the engine's drain slots with them: a slot left held by a
    purged request would keep the next phase's texts waiting for the replay sweep (the engine
    recovering from a lost request, which is not what a phase measures)."""
    from sending.engine import delivery_drain_slot_free

    queue_purge(args.redis_url, args.cluster_name)
    for channel in ("sms", "email"):
        delivery_drain_slot_free(channel)


def phase_leftovers_fail(args) -> int:
    """Bench housekeeping after a phase: its texts still `created` become `technical-failure`
    (so no later phase's cluster sends them, whether it reads a queue or the table), and the
    queues are emptied. Answers how many texts were left."""
    from django.db import OperationalError, connection

    with connection.cursor() as cursor:
        for attempt in range(5):
            try:  # a qcluster may still be running, locking rows in another order
                cursor.execute(
                    "UPDATE sending_notification SET status = 'technical-failure', "
                    "lease_until = NULL WHERE status = 'created'"
                )
                break
            except OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.5)
        left = cursor.rowcount
        cursor.execute("VACUUM (ANALYZE) sending_notification")
    queues_empty(args)
    return left


def wait_for(check, *, timeout: float, every: float = POLL_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def quantiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        only = values[0] if values else float("nan")
        return {"p50": only, "p95": only, "p99": only, "max": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


# --- phases 1 and 2: CPU per text, against a bare loop -----------------------------------------


def cpu_per_text(args, processes: Processes, env, fake_url) -> dict:
    fakes_latency(fake_url, 0.0)
    service = service_new("cpu")
    texts_create(service, args.texts)
    cluster, _ = processes.start("qcluster-cpu", env, "qcluster")
    window = CpuWindow([cluster.pid], pg_backends(args.database_url))
    finished = wait_for(
        lambda: window.observe(sent_count(service)) >= args.texts, timeout=args.phase_timeout
    )
    time.sleep(1.0)  # the cluster's bookkeeping of the last ones
    window.observe(sent_count(service))
    processes.stop(cluster)
    times = sent_times(service)
    left = phase_leftovers_fail(args)
    if len(times) < 2:
        raise BenchError("phase 1: fewer than two texts were handed over")
    cpu = window.per_item_ms()
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"1. CPU per delivered text: {cpu['total']:.2f} ms (qcluster {cpu['qcluster']:.2f}, "
          f"PostgreSQL {cpu['pg']:.2f}, Redis {cpu['redis']:.2f}) at {rate:.0f} texts/s; "
          f"{len(times)} of {args.texts} sent{'' if finished else ' (timed out)'}, "
          f"{left} left", flush=True)  # fmt: skip
    return {"cpu_ms": cpu, "rate": rate, "sent": len(times), "complete": finished}


_CLAIM_SQL = """
UPDATE sending_notification SET lease_until = now() + interval '60 seconds'
WHERE id = (
    SELECT id FROM sending_notification
    WHERE service_id = %s AND status = 'created' AND lease_until IS NULL
    LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id, recipient, content
"""
_MARK_SENT_SQL = """
UPDATE sending_notification
SET status = 'sending', sent_at = now(), sent_by = 'firetext', provider_reference = %s,
    lease_until = NULL, updated_at = now()
WHERE id = %s
"""


def bare_loop_thread(database_url: str, service_id: str, firetext_url: str, errors: list) -> None:
    """The least work a delivery can do, one text at a time: claim, POST, mark sent."""
    import psycopg
    import requests

    session = requests.Session()
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while claimed := conn.execute(_CLAIM_SQL, [service_id]).fetchone():
                notification_id, recipient, content = claimed
                answer = session.post(
                    firetext_url,
                    data={"apiKey": "bench", "from": "Bench", "to": recipient,
                          "message": content, "reference": str(notification_id)},
                    timeout=10,
                )  # fmt: skip
                if answer.status_code != 200 or answer.json().get("code") != 0:
                    raise BenchError(f"bare loop: Firetext answered {answer.status_code}")
                conn.execute(_MARK_SENT_SQL, [None, notification_id])
    except Exception as err:  # reported by the caller: a thread's failure spoils the figure
        errors.append(repr(err))
    finally:
        session.close()


def bare_loop(args, fake_url, concurrency: int) -> dict:
    fakes_latency(fake_url, 0.0)
    service = service_new("bare loop")
    texts_create(service, args.texts)
    queues_empty(args)  # no cluster runs: the loop is the sender
    # This process alone: its children (the fakes) are not the loop's work.
    window = CpuWindow([os.getpid()], pg_backends(args.database_url), tree=False)
    errors: list = []
    threads = [
        threading.Thread(
            target=bare_loop_thread,
            args=(args.database_url, str(service.id), f"{fake_url}/firetext", errors),
        )
        for _ in range(concurrency)
    ]
    window.observe(1)
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        window.observe(1)  # the threads' PostgreSQL backends, while they live
        time.sleep(POLL_SECONDS)
    window.observe(1 + sent_count(service))
    times = sent_times(service)
    phase_leftovers_fail(args)
    if errors or len(times) < args.texts:
        raise BenchError(f"bare loop: {len(times)} of {args.texts} sent; {errors[:3]}")
    cpu = window.per_item_ms()
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"2. bare loop, {concurrency} threads: {rate:.0f} texts/s, CPU {cpu['total']:.2f} ms a "
          f"text (this process {cpu['qcluster']:.2f}, PostgreSQL {cpu['pg']:.2f})",
          flush=True)  # fmt: skip
    return {"rate": rate, "cpu_ms": cpu, "concurrency": concurrency}


# --- phase 3: at 200 ms, and scale-out -------------------------------------------------------


def latency_drain(args, processes, env, fake_url, *, clusters: int = 1, label: str) -> dict:
    """Texts already made, `clusters` qclusters (each with `env`) start; rate over at most
    --window seconds from the first hand-over; PSS per qcluster tree at the end."""
    fakes_latency(fake_url, args.latency)
    service = service_new(label)
    texts_create(service, args.latency_texts)
    running = [
        processes.start(f"qcluster-{label}-{n}", env, "qcluster")[0] for n in range(clusters)
    ]
    if not wait_for(lambda: sent_count(service) > 0, timeout=120):
        raise BenchError(f"{label}: no text handed over within 120 s")
    first = time.monotonic()
    wait_for(
        lambda: sent_count(service) >= args.latency_texts or time.monotonic() - first > args.window,
        timeout=args.window + 5,
    )
    memory = [memory_mb(process.pid) for process in running]
    for process in running:
        processes.stop(process)
    times = sent_times(service)
    left = phase_leftovers_fail(args)
    result = {
        "rate": rate_of(times, args.window),
        "sent": len(times),
        "left": left,
        "pss_mb": sum(m["pss"] for m in memory) / clusters,
        "rss_mb": sum(m["rss"] for m in memory) / clusters,
    }
    print(f"3. {label}: {result['rate']:.1f} texts/s at {args.latency * 1000:.0f} ms "
          f"({len(times)} sent, {left} left), PSS {result['pss_mb']:.0f} MB per qcluster",
          flush=True)  # fmt: skip
    return result


# --- phases 4 and 5: through the API ---------------------------------------------------------


class Api:
    """gunicorn (2 sync workers, as deployed) and an API key of a new service."""

    def __init__(self, processes: Processes, env: dict):
        self.key = manage(env, "create_api_key", f"Engine bench {time.monotonic_ns()}")
        self.key = self.key.strip().split()[-1]
        web_env = {**env, "ALLOWED_HOSTS": "127.0.0.1", "API_RATE_LIMIT": "100000000/sec"}
        gunicorn_args = argparse.Namespace(workers=2, worker_class="sync", threads=1)
        self.server, self.base = gunicorn_start(
            gunicorn_args, web_env, processes.logdir / "gunicorn.log"
        )
        processes.running.append(self.server)
        self.local = threading.local()

    def post(self, path: str, body: dict) -> dict:
        """One POST over this thread's kept-alive connection; answers the JSON of a 201."""
        import http.client

        if not hasattr(self.local, "conn"):
            host, port = self.base.removeprefix("http://").split(":")
            self.local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            self.local.conn.request("POST", path, json.dumps(body),
                                    {"Content-Type": "application/json",
                                     "Authorization": f"Bearer {self.key}"})  # fmt: skip
            answer = self.local.conn.getresponse()
            data = answer.read()
        except OSError:
            self.local.conn.close()
            del self.local.conn
            raise
        if answer.status != 201:
            raise BenchError(f"POST {path} answered {answer.status}: {data[:200]!r}")
        return json.loads(data)


def _seconds(delta) -> float:
    return delta.total_seconds() * 1000


def stages_read(ids: list) -> tuple[list[float], dict[str, dict]]:
    """Accept → delivered per delivered text, and when each stage was reached, in ms after the
    accept (`created_at`): claimed (the first send attempt's `started_at`), provider answered
    (its `started_at` + `duration_ms`), handed over (`sent_at`), receipt applied (`updated_at`
    of the final status). Milestones, not differences: a receipt may beat the hand-over."""
    from datetime import timedelta

    from sending.models import Notification, SendAttempt

    rows = list(
        Notification.objects.filter(id__in=ids, status="delivered").values_list(
            "id", "created_at", "sent_at", "updated_at"
        )
    )
    first: dict = {}
    attempts = SendAttempt.objects.filter(notification_id__in=[row[0] for row in rows])
    for notification_id, started, duration in attempts.order_by("started_at").values_list(
        "notification_id", "started_at", "duration_ms"
    ):
        first.setdefault(notification_id, (started, duration))
    names = ("claimed", "provider answered", "handed over", "receipt applied")
    totals, stages = [], {name: [] for name in names}
    for notification_id, created, sent, updated in rows:
        totals.append(_seconds(updated - created))
        started, duration = first.get(notification_id, (None, None))
        if started is None or duration is None or sent is None:
            continue
        answered = started + timedelta(milliseconds=duration)
        for name, moment in zip(names, (started, answered, sent, updated), strict=True):
            stages[name].append(_seconds(moment - created))
    return totals, {name: quantiles(values) for name, values in stages.items() if values}


def warm_up(args, api: Api, *, count: int = 50, rate: float = 25.0) -> None:
    """Unmeasured: `count` texts at a gentle rate, each delivered before the measured phase
    starts, so it finds the qcluster and gunicorn as a running service has them (first claims,
    connections and imports done), not just started."""
    from sending.models import Notification

    body = {"phone_number": "07700 900123", "content": "Warm-up"}
    ids, start = [], time.monotonic()
    for number in range(count):
        pause = start + number / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        ids.append(api.post("/notifications/sms", body)["id"])
    delivered = Notification.objects.filter(id__in=ids, status="delivered")
    wait_for(lambda: delivered.count() >= count, timeout=args.wait, every=0.5)


def end_to_end(args, api: Api, rate: float) -> dict:
    """Single texts at a steady `rate` for --duration seconds; accept → delivered."""
    count = round(rate * args.duration)
    ids, behind = [], 0.0
    body = {"phone_number": "07700 900123", "content": "Your code is 123456"}

    def post() -> None:
        ids.append(api.post("/notifications/sms", body)["id"])

    with ThreadPoolExecutor(max_workers=32) as pool:
        futures, start = [], time.monotonic()
        for number in range(count):
            pause = start + number / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                behind = max(behind, -pause)
            futures.append(pool.submit(post))
        offered = count / (time.monotonic() - start)
        for future in futures:
            future.result()
    from sending.models import Notification

    delivered = Notification.objects.filter(id__in=ids, status="delivered")
    wait_for(lambda: delivered.count() >= len(ids), timeout=args.wait, every=0.5)
    totals, stages = stages_read(ids)
    missing = len(ids) - len(totals)
    spread_ = quantiles(sorted(totals + [float("inf")] * missing))
    left = phase_leftovers_fail(args)
    p95 = spread_["p95"]
    print(f"4. end to end at {offered:.0f}/s ({count} texts, pacer at most {behind * 1000:.0f} ms "
          f"behind): p50 {spread_['p50']:.0f} ms, p95 {p95:.0f} ms; {len(totals)} delivered "
          f"within {args.wait:.0f} s, {left} never sent", flush=True)  # fmt: skip
    for name, one in stages.items():
        print(
            f"   {name:<18} p50 {one['p50']:>7.0f} ms, p95 {one['p95']:>7.0f} ms after the accept"
        )
    return {"rate": rate, "offered": offered, "count": count, "delivered": len(totals),
            "behind_ms": behind * 1000, "stages": stages, **spread_}  # fmt: skip


def burst(args, api: Api) -> dict:
    """--burst texts through the batch API, 1,000 a request, from two threads."""
    from django.db.models import Min
    from django.utils import timezone

    from sending.models import Notification

    requests_ = [
        {"notifications": [{"phone_number": "07700 900123", "content": f"Burst text {n}"}
                           for n in range(start, min(args.burst, start + CREATE_CHUNK))]}
        for start in range(0, args.burst, CREATE_CHUNK)
    ]  # fmt: skip
    ids: list = []
    # The API's service also sent phase 4's texts: the figures are of the burst's own.
    since = timezone.now()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for answer in pool.map(lambda body: api.post("/notifications/sms/batch", body), requests_):
            ids += [item["id"] for item in answer["notifications"]]
    accepted_s = time.monotonic() - started
    service_id = Notification.objects.filter(id=ids[0]).values_list("service_id", flat=True)[0]
    burst_texts = Notification.objects.filter(service_id=service_id, created_at__gte=since)
    sent = burst_texts.filter(sent_at__isnull=False)
    first = time.monotonic()
    wait_for(lambda: sent.count() >= args.burst or time.monotonic() - first > args.window,
             timeout=args.window + 5, every=0.5)  # fmt: skip
    times = sorted(t.timestamp() for t in sent.values_list("sent_at", flat=True))
    marks = burst_texts.aggregate(accepted=Min("created_at"), handed_over=Min("sent_at"))
    left = phase_leftovers_fail(args)
    if marks["handed_over"] is None:
        raise BenchError("burst: no text handed over")
    first_s = (marks["handed_over"] - marks["accepted"]).total_seconds()
    rate = rate_of(times, args.window)
    print(f"5. burst of {args.burst:,}: accepted in {accepted_s:.1f} s "
          f"({args.burst / accepted_s:,.0f}/s); first hand-over {first_s:.2f} s after the first "
          f"accept; drain {rate:.0f} texts/s ({len(times):,} sent, {left:,} left)",
          flush=True)  # fmt: skip
    return {"accept_rate": args.burst / accepted_s, "first_s": first_s, "rate": rate,
            "sent": len(times)}  # fmt: skip


# --- phase 6: status callbacks -------------------------------------------------------------


def callbacks_delivered() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM webhooks_callbackevent WHERE state = 'delivered'")
        return cursor.fetchone()[0]


def callbacks_cpu(args, processes, env, fake_url) -> dict:
    from sending.models import NotificationStatus
    from sending.status import notification_update_status

    receiver = f"{fake_url}/service-callback"
    ids = []
    for n in range(CALLBACK_SERVICES):
        service = service_new(f"callbacks {n}", callback_url=receiver)
        ids += texts_create(service, args.callbacks // CALLBACK_SERVICES)
    queues_empty(args)  # their deliveries: these texts stay unsent
    for notification_id in ids:
        notification_update_status(
            notification_id=notification_id, status=NotificationStatus.DELIVERED
        )
    cluster, _ = processes.start("qcluster-callbacks", env, "qcluster")
    window = CpuWindow([cluster.pid], pg_backends(args.database_url))
    finished = wait_for(
        lambda: window.observe(callbacks_delivered()) >= len(ids), timeout=args.phase_timeout
    )
    time.sleep(1.0)
    window.observe(callbacks_delivered())
    processes.stop(cluster)
    phase_leftovers_fail(args)
    cpu = window.per_item_ms()
    print(f"6. status callback CPU: {cpu['total']:.2f} ms (qcluster {cpu['qcluster']:.2f}, "
          f"PostgreSQL {cpu['pg']:.2f}, Redis {cpu['redis']:.2f}); "
          f"{window.end['done']} of {len(ids)} delivered{'' if finished else ' (timed out)'}",
          flush=True)  # fmt: skip
    return {"cpu_ms": cpu, "delivered": window.end["done"], "count": len(ids)}


# --- the run ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("engine"))
    parser.add_argument("--redis-url", default=bench_redis_url(12))
    parser.add_argument("--cluster-name", default="notify-bench-engine")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per send")
    parser.add_argument("--texts", type=int, default=4000, help="texts, phases 1 and 2")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="bare loop threads (default: engine_concurrency)")  # fmt: skip
    parser.add_argument("--latency-texts", type=int, default=15000, help="texts, phase 3")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured at most")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds, end to end")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to deliver, e2e")
    parser.add_argument("--burst", type=int, default=100_000, help="texts, phase 5")
    parser.add_argument("--callbacks", type=int, default=2000, help="callbacks, phase 6")
    parser.add_argument("--phase-timeout", type=float, default=180.0)
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.texts, args.latency_texts, args.window = 1000, 5000, 10.0
        args.duration, args.wait, args.burst, args.callbacks = 4.0, 20.0, 5000, 400
    return args


def figures_of(args, r: dict) -> list[dict]:
    ms = f"{args.latency * 1000:.0f} ms"
    cpu, loop = r["cpu"], r["loop"]
    loop_ratio = cpu["rate"] / loop["rate"]
    slow, single, two = r["slow"], r["one"], r["two"]
    scale = two["rate"] / single["rate"]
    found = [
        figure(
            "CPU per delivered text (qcluster + PostgreSQL + Redis), fakes at once",
            value=spread([cpu["cpu_ms"]["total"]]), unit="ms",
            baseline="the issue's 'today' (before the engine)",
            baseline_value=spread([CPU_TODAY_MS]),
            ratio=spread([cpu["cpu_ms"]["total"] / CPU_TODAY_MS]),
            target=f"<= {CPU_TARGET_MS} ms", met=cpu["cpu_ms"]["total"] <= CPU_TARGET_MS,
            note=f"qcluster {cpu['cpu_ms']['qcluster']:.2f}, PostgreSQL {cpu['cpu_ms']['pg']:.2f},"
            f" Redis {cpu['cpu_ms']['redis']:.2f} (the shared server: an upper bound); "
            f"bare loop {loop['cpu_ms']['total']:.2f} ms a text",
        ),
        figure(
            "delivery rate against a bare claim-POST-mark loop, fakes at once",
            value=spread([cpu["rate"]]), unit="texts/s",
            baseline=f"bare loop, {loop['concurrency']} threads",
            baseline_value=spread([loop["rate"]]), ratio=spread([loop_ratio]),
            target=f">= {LOOP_RATIO_TARGET}", met=loop_ratio >= LOOP_RATIO_TARGET,
        ),
        figure(
            f"delivery at {ms} latency, one qcluster at default settings",
            value=spread([slow["rate"]]), unit="texts/s",
            baseline="issue: 144/s at Q_WORKERS=32 (634 MB)", baseline_value=spread([144.0]),
            ratio=spread([slow["rate"] / 144.0]),
            target=f">= {LATENCY_RATE_TARGET}/s", met=slow["rate"] >= LATENCY_RATE_TARGET,
        ),
        figure(
            f"PSS of the qcluster tree at {ms} latency, default settings",
            value=spread([slow["pss_mb"]]), unit="MB",
            baseline="issue: 634 MB at Q_WORKERS=32", baseline_value=spread([634.0]),
            ratio=spread([slow["pss_mb"] / 634.0]),
            target=f"<= {PSS_TARGET_MB} MB", met=slow["pss_mb"] <= PSS_TARGET_MB,
            note=f"RSS {slow['rss_mb']:.0f} MB",
        ),
        figure(
            f"two qclusters vs one at {ms} (scale_out_env)",
            value=spread([two["rate"]]), unit="texts/s", baseline="one qcluster",
            baseline_value=spread([single["rate"]]), ratio=spread([scale]),
            target=f">= {SCALE_TARGET}", met=scale >= SCALE_TARGET,
            note="each qcluster with scale_out_env: "
            + (str(r["scale_out_settings"]) if r["scale_out_settings"] else "no limit set"),
        ),
    ]  # fmt: skip
    for e2e in r["e2e"]:
        target = E2E_TARGETS_MS[e2e["rate"]]
        stages = "; ".join(
            f"{name} p50 {one['p50']:.0f} / p95 {one['p95']:.0f}"
            for name, one in e2e["stages"].items()
        )
        found.append(figure(
            f"end to end, accept → delivered at {e2e['rate']}/s (fakes {ms}, receipts at once)",
            value=spread([e2e["p95"]]), unit="ms p95",
            target=f"p95 < {target} ms", met=e2e["p95"] < target,
            latency_ms={k: e2e[k] for k in ("p50", "p95", "p99") if e2e[k] != float("inf")},
            note=f"{e2e['delivered']} of {e2e['count']} delivered within {args.wait:.0f} s "
            f"(offered {e2e['offered']:.0f}/s); stages reached, ms after the accept: {stages}",
        ))  # fmt: skip
    b = r["burst"]
    found += [
        figure(
            f"burst of {args.burst:,} texts (batch API) at {ms}: drain rate",
            value=spread([b["rate"]]), unit="texts/s",
            target=f">= {BURST_RATE_TARGET}/s", met=b["rate"] >= BURST_RATE_TARGET,
            note=f"accepted at {b['accept_rate']:,.0f}/s; {b['sent']:,} handed over in the "
            f"window (at most {args.window:.0f} s)",
        ),
        figure(
            f"burst of {args.burst:,}: first accept → first hand-over",
            value=spread([b["first_s"]]), unit="s",
            target=f"<= {FIRST_HANDOVER_TARGET_S:g} s", met=b["first_s"] <= FIRST_HANDOVER_TARGET_S,
        ),
    ]  # fmt: skip
    c = r["callbacks"]
    found.append(figure(
        "CPU per status callback (qcluster + PostgreSQL + Redis, receiver left out)",
        value=spread([c["cpu_ms"]["total"]]), unit="ms",
        baseline="the issue's 'today' (about 8)", baseline_value=spread([CALLBACK_CPU_TODAY_MS]),
        ratio=spread([c["cpu_ms"]["total"] / CALLBACK_CPU_TODAY_MS]),
        target=f"<= {CALLBACK_CPU_TARGET_MS} ms",
        met=c["cpu_ms"]["total"] <= CALLBACK_CPU_TARGET_MS,
        note=f"qcluster {c['cpu_ms']['qcluster']:.2f}, PostgreSQL {c['cpu_ms']['pg']:.2f}, Redis "
        f"{c['cpu_ms']['redis']:.2f}; {c['delivered']} of {c['count']} delivered, "
        f"{CALLBACK_SERVICES} services",
    ))  # fmt: skip
    return found


def phases(args, processes: Processes, env: dict, fake_url: str) -> dict:
    results = {}
    results["cpu"] = cpu_per_text(args, processes, env, fake_url)
    results["loop"] = bare_loop(args, fake_url, args.concurrency or engine_concurrency(env))
    results["slow"] = latency_drain(args, processes, env, fake_url, label="one qcluster")
    scaled = scale_out_env(env)
    results["scale_out_settings"] = {k: v for k, v in scaled.items() if env.get(k) != v}
    # Without a limit the one-qcluster figure is phase 3's own: not measured twice.
    results["one"] = results["slow"]
    if results["scale_out_settings"]:
        results["one"] = latency_drain(args, processes, scaled, fake_url, label="one, limited")
    results["two"] = latency_drain(args, processes, scaled, fake_url, clusters=2,
                                   label="two qclusters")  # fmt: skip
    api = Api(processes, env)
    # Phases 4 and 5: a qcluster beside gunicorn; the fakes post receipts to gunicorn.
    receipts_fakes = fakes_start(processes, env, receipts_to=api.base)
    fakes_latency(receipts_fakes, args.latency)
    api_env = {**env, "FIRETEXT_URL": f"{receipts_fakes}/firetext",
               "MMG_URL": f"{receipts_fakes}/mmg"}  # fmt: skip
    cluster, _ = processes.start("qcluster-api", api_env, "qcluster")
    warm_up(args, api)
    results["e2e"] = [end_to_end(args, api, rate) for rate in E2E_TARGETS_MS]
    fakes_latency(fake_url, args.latency)
    processes.stop(cluster)
    cluster, _ = processes.start("qcluster-burst", env, "qcluster")  # fakes without receipts
    time.sleep(5)  # started and idle, as a burst finds it
    results["burst"] = burst(args, api)
    processes.stop(cluster)
    fakes_latency(fake_url, 0.0)
    results["callbacks"] = callbacks_cpu(args, processes, env, fake_url)
    return results


def main() -> int:
    args = parse_args()
    env = delivery_env(args, SERVICE_CALLBACK_ALLOW_INSECURE="true")
    env.pop("Q_WORKERS", None)
    logdir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    processes = Processes(logdir)
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        database_recreate(args.database_url)
        queue_purge(args.redis_url, args.cluster_name)
        manage(env, "migrate", "--verbosity", "0")
        fake_url = fakes_start(processes, env)
        env.update(FIRETEXT_URL=f"{fake_url}/firetext", MMG_URL=f"{fake_url}/mmg")
        django_setup(env)
        queues_empty(args)  # a slot an earlier run left held
        import logging

        logging.getLogger("django-q").setLevel(logging.WARNING)
        results = phases(args, processes, env, fake_url)
    finally:
        processes.stop_all()
        queue_purge(args.redis_url, args.cluster_name)
    load = " / ".join(f"{x:.2f}" for x in load_before)
    print(f"load average before the run: {load}; {time.monotonic() - started:.0f} s; "
          f"logs: {logdir}")  # fmt: skip
    found = figures_of(args, results)
    print()
    for one in found:
        base = f"; baseline {one['baseline']}: {one['baseline_value']['median']:.4g}" if one[
            "baseline"] else ""  # fmt: skip
        verdict = "met" if one["met"] else "MISSED"
        print(f"{one['name']}: {one['value']['median']:.4g} {one['unit']} (target "
              f"{one['target']}: {verdict}{base})")  # fmt: skip
    results_write(args.json, "delivery_engine", found, results=results)
    return 0 if all(one["met"] for one in found) else 1


if __name__ == "__main__":
    run(main)
