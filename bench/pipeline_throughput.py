"""The delivery pipeline's throughput against a no-op Django Q task; its latency at a steady rate.

Everything runs on this machine over loopback: PostgreSQL (the benchmark's own database, dropped
and made again on every run, so its name must contain "bench"), the Redis broker (its own db and
cluster name; the queue is purged before and after), the fake providers (receipts off, no faults)
and one `manage.py qcluster` at a time with Q_WORKERS workers, the same settings in every phase.

Each round (--rounds, median taken, so that other load on a shared machine evens out):
1. No-op: N tasks of `noop` below are queued while no cluster runs; then a cluster starts.
   Each run of the task appends its finish time to a Redis list (one RPUSH, its only work).
2. Pipeline: N texts are made through `notification_create` (each queues `deliver_sms` on commit)
   while no cluster runs; then a cluster starts and sends them to the fake providers.
Before each phase the result and notification tables are vacuumed and analysed, as autovacuum
would (it is off on the machine this was written on).
Both rates are completions per second from the first to the last task done: the no-op's own
finish times, the notifications' `sent_at`. Also shown: the CPU each task cost, up to a second
after the last completion (so the monitor's handling of the last results is in it). Django Q
saves no successful results (the project's `Q_SAVE_LIMIT` of -1), in both phases alike.
3. Latency, once, after the last round: with that cluster warm, texts are made through
   `notification_create` in this process at a steady --rate for --duration seconds; the figure
   is `sent_at - created_at` per notification.

    make bench-pipeline                   # or: .venv/bin/python bench/pipeline_throughput.py --help

Targets: median pipeline rate >= 0.5 x the no-op rate; latency p95 < 1 s. Exit status 0 when both
are met, 1 when one is missed, 2 when the run itself went wrong.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

# The repository root: bench.common here; the cluster has it on its path already.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    ROOT,
    BenchError,
    base_env,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    django_setup,
    figure,
    manage,
    process_cpu_seconds,
    process_tree,
    results_arguments,
    results_write,
    spread,
)

RATIO_TARGET = 0.5
P95_TARGET_SECONDS = 1.0
POLL_SECONDS = 0.05
CPU_COLUMNS = (("cluster", 8), ("pg", 6), ("fake", 6), ("bench", 6), ("other", 6))
# The cluster imports it by this path (the repository root is on its sys.path).
NOOP_TASK = "bench.pipeline_throughput.noop"

_redis_connection = None


def noop(done_key: str) -> None:
    """The baseline task, run by the cluster's workers: say that it finished, nothing else."""
    global _redis_connection
    if _redis_connection is None:
        import redis
        from django.conf import settings

        _redis_connection = redis.Redis.from_url(settings.REDIS_URL)
    _redis_connection.rpush(done_key, repr(time.time()))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("pipeline"))
    parser.add_argument("--redis-url", default=bench_redis_url(10))
    parser.add_argument("--cluster-name", default="notify-bench-pipeline")
    parser.add_argument("--workers", type=int, default=2, help="Q_WORKERS of the one qcluster")
    parser.add_argument("--notifications", type=int, default=2000, help="N per throughput phase")
    parser.add_argument(
        "--rounds", type=int, default=3, help="no-op then pipeline, this many times (median)"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="notifications/s, latency phase")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds, latency phase")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds per phase")
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.notifications, args.duration = 1, 400, 5.0
    return args


# --- processes ---------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot, summed."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Stack:
    """The processes this benchmark starts, each in its own session so that Ctrl-C reaches only
    the benchmark, which then stops them in order."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env = env
        self.logdir = logdir
        self.fake: subprocess.Popen | None = None
        self.cluster: subprocess.Popen | None = None
        self.clusters_started = 0

    def _start(self, name: str, *argv: str) -> tuple[subprocess.Popen, Path]:
        log = self.logdir / f"{name}.log"
        with log.open("a") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *argv],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, log

    def fake_start(self) -> str:
        self.fake, log = self._start("fake-providers", "runfakeproviders", "--port", "0",
                                     "--receipts-to", "")  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in log.read_text().splitlines():
                if line.startswith("Fake providers listening on "):
                    return line.split()[-1]
            if self.fake.poll() is not None:
                raise BenchError(f"fake providers exited:\n{log.read_text()}")
            time.sleep(0.1)
        raise BenchError("fake providers did not start within 60 s")

    def cluster_start(self) -> None:
        self.clusters_started += 1
        self.cluster, _ = self._start(f"qcluster-{self.clusters_started}", "qcluster")

    def cluster_pids(self) -> list[int]:
        return process_tree(self.cluster.pid) if self.cluster else []

    def cluster_stop(self, *, timeout: float = 90) -> None:
        if self.cluster is not None:
            _stop(self.cluster, timeout=timeout)
            self.cluster = None

    def stop(self, *, aborted: bool) -> None:
        # A cluster stopped while tasks are still queued can hang (seen here: its workers gone,
        # the pusher blocked on the full task queue), so after an abort it gets 10 s.
        self.cluster_stop(timeout=10 if aborted else 90)
        if self.fake is not None:
            _stop(self.fake, timeout=15)
            self.fake = None


def _stop(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM (a qcluster then finishes its tasks and saves their results), then SIGKILL to the
    whole session it leads, so no forked worker is left behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- setup -------------------------------------------------------------------------------------


def environment(args: argparse.Namespace) -> dict[str, str]:
    env = base_env(
        args.database_url,
        DJANGO_SETTINGS_MODULE="notifyproject.settings",
        REDIS_URL=args.redis_url,
        Q_CLUSTER_NAME=args.cluster_name,
        Q_WORKERS=str(args.workers),
        LOG_LEVEL="WARNING",
        FIRETEXT_API_KEY="bench",
        MMG_API_KEY="bench",
        PROVIDER_TIMEOUT_SECONDS="5",
    )
    for name in ("FIRETEXT_RECEIPT_URL", "MMG_RECEIPT_URL"):
        env.pop(name, None)
    return env


def queue_purge() -> int:
    """Empty this cluster's Redis queue; answers how many tasks were left in it."""
    from django_q.brokers import get_broker

    broker = get_broker()
    left = broker.queue_size()
    broker.purge_queue()
    return left


# --- measuring ---------------------------------------------------------------------------------


class Window:
    """CPU used by each group of processes from the first completion seen until a second after
    the last, so that it covers the monitor's work too.

    Processes come and go inside a phase (Django Q recycles a worker every 500 tasks, and its
    database connection goes with it), so each process counts with the last figure seen for it:
    at most one poll's worth of a process that ends is lost."""

    def __init__(self, groups):
        self.groups = groups  # name -> function answering the group's pids now
        self.seen: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.start = self.end = None

    def sample(self, done: int) -> dict:
        for name, pids in self.groups.items():
            for pid in pids():
                if (used := process_cpu_seconds(pid)) is not None:
                    self.seen[name][pid] = used
        return {
            "seen": {name: dict(used) for name, used in self.seen.items()},
            "machine": machine_busy_seconds(),
            "done": done,
        }

    def observe(self, done: int) -> int:
        if done and self.start is None:
            self.start = self.sample(done)
        self.end = self.sample(done)
        return done

    def per_task_ms(self) -> dict[str, float]:
        tasks = self.end["done"] - self.start["done"]
        if tasks <= 0:
            return {}
        used = {
            name: sum(value - self.start["seen"][name].get(pid, 0.0) for pid, value in end.items())
            for name, end in self.end["seen"].items()
        }
        used["other"] = self.end["machine"] - self.start["machine"] - sum(used.values())
        return {name: seconds * 1000 / tasks for name, seconds in used.items()}


def wait_until(check, *, what: str, timeout: float, every: float = POLL_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def pg_backends(database_url: str):
    """Answers a function giving the PostgreSQL backends serving this database, but ours."""
    import dj_database_url
    from django.db import connection

    name = dj_database_url.parse(database_url)["NAME"]

    def pids() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            return [pid for (pid,) in cursor.fetchall()]

    return pids


def tables_vacuum() -> None:
    """What autovacuum does, before every phase, so that each starts alike: the monitor deletes a
    result row per task and the dead rows slow its next selects; and the planner's statistics
    must know about the backlog (see bench/README.md: with statistics that say `created` is
    rare, each claim reads the whole backlog)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) django_q_task, sending_notification")


def window_close(window: "Window", done: int) -> None:
    """The monitor has the last results a moment after the last completion: count it in."""
    time.sleep(1.0)
    window.observe(done)


def noop_done_key(args) -> str:
    return f"bench:{args.cluster_name}:noop-done"


def measure_noop(args, stack: Stack, groups) -> dict:
    import redis
    from django_q.tasks import async_task

    done_key = noop_done_key(args)
    connection = redis.Redis.from_url(args.redis_url)
    connection.delete(done_key)
    for number in range(args.notifications):
        async_task(NOOP_TASK, done_key, task_name=f"bench-noop-{number}")
    tables_vacuum()
    print(f"no-op: {args.notifications} tasks queued; starting the cluster", flush=True)
    stack.cluster_start()
    window = Window(groups)

    wait_until(
        lambda: window.observe(connection.llen(done_key)) >= args.notifications,
        what="every no-op task to finish",
        timeout=args.phase_timeout,
    )
    finished = sorted(float(t) for t in connection.lrange(done_key, 0, -1))
    connection.delete(done_key)
    window_close(window, args.notifications)
    stack.cluster_stop()
    return _throughput(finished, window)


def _throughput(finished: list[float], window: Window) -> dict:
    span = finished[-1] - finished[0]
    return {
        "count": len(finished),
        "span": span,
        "rate": (len(finished) - 1) / span,
        "cpu_ms": window.per_task_ms(),
    }


def notifications_create(count: int, service) -> list:
    from sending.models import NotificationType
    from sending.services import notification_create

    return [
        notification_create(
            service=service,
            notification_type=NotificationType.SMS,
            recipient="447700900123",
            content="Your code is 123456",
        ).id
        for _ in range(count)
    ]


def sent_count(ids) -> int:
    from sending.models import Notification, NotificationStatus

    return Notification.objects.filter(id__in=ids, status=NotificationStatus.SENDING).count()


def measure_pipeline(args, stack: Stack, groups, service) -> dict:
    """Leaves the cluster running (the latency phase may follow)."""
    from django_q.brokers import get_broker

    from sending.models import Notification

    ids = notifications_create(args.notifications, service)
    queued = get_broker().queue_size()
    if queued != args.notifications:
        raise BenchError(f"{queued} tasks queued for {args.notifications} notifications")
    tables_vacuum()
    print(f"pipeline: {len(ids)} texts created and queued; starting the cluster", flush=True)
    stack.cluster_start()
    window = Window(groups)

    mine = Notification.objects.filter(service=service)
    wait_until(
        lambda: window.observe(mine.filter(sent_at__isnull=False).count()) >= args.notifications,
        what="every text to reach sending",
        timeout=args.phase_timeout,
    )
    rows = list(mine.order_by("sent_at").values_list("id", "sent_at", "status"))
    if {status for _, _, status in rows} != {"sending"}:
        raise BenchError("a text did not end in sending: the rate is not the pipeline's")
    window_close(window, args.notifications)
    result = _throughput([sent_at.timestamp() for _, sent_at, _ in rows], window)
    result["ids"] = ids
    return result


def measure_latency(args, service) -> dict:
    """At a steady rate, paced on absolute due times so a slow create does not slow the rest."""
    from sending.models import Notification

    count = round(args.rate * args.duration)
    print(f"latency: {count} texts at {args.rate:g}/s through notification_create", flush=True)
    ids, behind = [], 0.0
    start = time.monotonic()
    for number in range(count):
        pause = start + number / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            behind = max(behind, -pause)
        ids.extend(notifications_create(1, service))
    offered = count / (time.monotonic() - start)
    wait_until(
        lambda: sent_count(ids) >= count, what="every text to reach sending", timeout=120, every=0.2
    )
    latencies = sorted(
        (sent_at - created_at).total_seconds()
        for created_at, sent_at in Notification.objects.filter(id__in=ids).values_list(
            "created_at", "sent_at"
        )
    )
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "count": count,
        "offered": offered,
        "behind": behind,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "max": latencies[-1],
        "ids": ids,
    }


def fake_requests_check(fake_url: str, ids: list) -> int:
    """Every notification reached the fake providers exactly once; answers the sends counted."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{fake_url}/_requests", timeout=30) as answer:  # loopback
        sends = json.load(answer)["requests"]
    references = sorted(send["reference"] for send in sends)
    if references != sorted(str(i) for i in ids):
        raise BenchError(f"{len(sends)} sends for {len(ids)} notifications, not one each")
    return len(sends)


# --- report ------------------------------------------------------------------------------------


def report(args, rounds: list[dict], latency: dict, sends: int) -> bool:
    print()
    print(
        f"one qcluster, {args.workers} workers, Redis broker, PostgreSQL; {os.cpu_count()} cores; "
        f"{args.rounds} rounds of N={args.notifications} no-op tasks then N texts"
    )
    print(
        f"{'round':<6} {'phase':<9} {'done/s':>7} {'span s':>7} "
        f"{'cluster':>8} {'pg':>6} {'fake':>6} {'bench':>6} {'other':>6}  {'ratio':>6}"
    )
    for number, one in enumerate(rounds, 1):
        for name in ("no-op", "pipeline"):
            result, cpu = one[name], one[name]["cpu_ms"]
            ratio = f"{one['ratio']:>6.2f}" if name == "pipeline" else ""
            print(
                f"{number:<6} {name:<9} {result['rate']:>7.1f} {result['span']:>7.2f} "
                + " ".join(f"{cpu.get(group, 0):>{width}.2f}" for group, width in CPU_COLUMNS)
                + f"  {ratio}"
            )
    print(
        "done/s: completions per second, first to last (no-op finish times, sent_at); "
        "cluster…other: CPU ms per task from the first completion to a second after the last "
        "(qcluster processes, this database's PostgreSQL backends, fake providers, this "
        "process, everything else on the machine)"
    )
    print(f"fake providers received {sends} sends for as many texts, each once")
    ratio = statistics.median(one["ratio"] for one in rounds)
    throughput_met = ratio >= RATIO_TARGET
    print(
        f"median throughput ratio pipeline/no-op: {ratio:.2f} "
        f"(target >= {RATIO_TARGET}: {'met' if throughput_met else 'MISSED'})"
    )
    print(
        f"latency at {latency['offered']:.1f}/s offered ({latency['count']} texts, pacer at most "
        f"{latency['behind'] * 1000:.0f} ms behind): sent_at - created_at "
        f"p50 {latency['p50'] * 1000:.0f} ms, p95 {latency['p95'] * 1000:.0f} ms, "
        f"p99 {latency['p99'] * 1000:.0f} ms, max {latency['max'] * 1000:.0f} ms"
    )
    latency_met = latency["p95"] < P95_TARGET_SECONDS
    print(f"latency target p95 < {P95_TARGET_SECONDS:g} s: {'met' if latency_met else 'MISSED'}")
    results_write(
        args.json,
        "pipeline_throughput",
        [
            figure(
                "delivery pipeline, created → sending (fakes at once)",
                value=spread(one["pipeline"]["rate"] for one in rounds),
                unit="texts/s",
                baseline="no-op Django Q task",
                baseline_value=spread(one["no-op"]["rate"] for one in rounds),
                ratio=spread(one["ratio"] for one in rounds),
                target=f">= {RATIO_TARGET}",
                met=throughput_met,
                note=f"{args.workers} workers; no successful results saved (Q_SAVE_LIMIT -1)",
            ),
            figure(
                f"created → sending at {latency['offered']:.0f}/s (p95)",
                value=spread([latency["p95"] * 1000]),
                unit="ms p95",
                target=f"p95 < {P95_TARGET_SECONDS * 1000:.0f} ms",
                met=latency_met,
                latency_ms={k: latency[k] * 1000 for k in ("p50", "p95", "p99")},
            ),
        ],
    )
    return throughput_met and latency_met


def main() -> int:
    args = parse_args()
    env = environment(args)
    logdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    stack = Stack(env, logdir)
    load_before = os.getloadavg()
    finished = False
    try:
        database_recreate(args.database_url)
        manage(env, "migrate", "--verbosity", "0")
        fake_url = stack.fake_start()
        env.update(FIRETEXT_URL=f"{fake_url}/firetext", MMG_URL=f"{fake_url}/mmg")
        django_setup(env)
        from sending.models import Service

        queue_purge()
        groups = {
            "cluster": stack.cluster_pids,
            "pg": pg_backends(args.database_url),
            "fake": lambda: [stack.fake.pid],
            "bench": lambda: [os.getpid()],
        }
        rounds, ids = [], []
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds}", flush=True)
            stack.cluster_stop()  # the pipeline phase leaves it running
            noop_result = measure_noop(args, stack, groups)
            service = Service.objects.create(name=f"Benchmark round {number}")
            pipeline = measure_pipeline(args, stack, groups, service)
            ids += pipeline["ids"]
            ratio = pipeline["rate"] / noop_result["rate"]
            rounds.append({"no-op": noop_result, "pipeline": pipeline, "ratio": ratio})
        latency = measure_latency(args, Service.objects.create(name="Benchmark latency"))
        sends = fake_requests_check(fake_url, ids + latency["ids"])
        finished = True
    finally:
        stack.stop(aborted=not finished)
        if "django_q.brokers" in sys.modules:
            left = queue_purge()
            if left:
                print(f"{left} tasks were left in the queue (purged)", file=sys.stderr)
            import redis

            redis.Redis.from_url(args.redis_url).delete(noop_done_key(args))
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in load_before)}")
    print(f"logs: {logdir}")
    return 0 if report(args, rounds, latency, sends) else 1


def _terminate(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: every process stopped, the queue emptied", file=sys.stderr)
        sys.exit(130)
