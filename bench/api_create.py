"""How fast the API accepts texts: `POST /notifications/sms` against the bare `POST /livez`.

Both are served by the same gunicorn in the same run, on PostgreSQL with the Redis broker, and
loaded by wrk over loopback for a bounded time each, after a warm-up. No qcluster runs: the
delivery tasks only queue, and the queue is emptied at the end. The database named by
--database-url is dropped and made again on every run, so it must be the benchmark's own
(its name must contain "bench").

    make bench-api                        # or: .venv/bin/python bench/api_create.py --help

Target: the create endpoint serves at least TARGET_RATIO of the bare view's requests per second.
The exit status is 0 when it does, 1 when it misses, 2 when the run itself went wrong.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import dj_database_url
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.common import (  # noqa: E402
    BenchError,
    base_env,
    cpu_seconds,
    database_recreate,
    gunicorn_arguments,
    gunicorn_pids,
    gunicorn_start,
    manage,
    queue_purge,
    run,
    wrk_ensure,
)
from bench.common import wrk_run as wrk_run_script  # noqa: E402

WRK_SCRIPT = Path(__file__).resolve().with_name("post_json.lua")
TARGET_RATIO = 0.5
TARGETS = {"bare view": "/livez", "create SMS": "/notifications/sms"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/notify_bench_api"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--cluster-name", default="notify-bench-api")
    gunicorn_arguments(parser)
    parser.add_argument("--duration", type=int, default=15, help="seconds measured per target")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--rate-limit", default="100000000/sec", help="API_RATE_LIMIT")
    return parser.parse_args()


def notification_count(url: str) -> int:
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute("SELECT count(*) FROM sending_notification").fetchone()[0]


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return base_env(
        args.database_url,
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=args.redis_url,
        Q_CLUSTER_NAME=args.cluster_name,
        API_RATE_LIMIT=args.rate_limit,
    )


def wrk_run(wrk: str, url: str, seconds: int, args, api_key: str) -> dict:
    result = wrk_run_script(
        wrk, WRK_SCRIPT, url, seconds,
        connections=args.connections, threads=args.wrk_threads,
        env={**os.environ, "BENCH_API_KEY": api_key}, slack=30,
    )  # fmt: skip
    if result["non_2xx"]:
        raise BenchError(f"{url}: {result['non_2xx']} answers were not 2xx: the rate is not real")
    return result


def server_pids(server, database_url: str) -> dict[str, list[int]]:
    """The gunicorn master and workers, and the PostgreSQL backends serving this database."""
    name = dj_database_url.parse(database_url)["NAME"]
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return {"app": gunicorn_pids(server), "db": [pid for (pid,) in backends]}


def ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.1f}"


def report(results: dict[str, dict], args, queued: int) -> float:
    bare, create = results["bare view"], results["create SMS"]
    ratio = create["rate"] / bare["rate"]
    print()
    print(
        f"gunicorn {args.workers} × {args.worker_class}"
        + (f" ({args.threads} threads)" if args.worker_class == "gthread" else "")
        + f"; wrk {args.wrk_threads} thread(s), {args.connections} connections, "
        f"{args.duration} s per target after {args.warmup} s warm-up; {os.cpu_count()} cores"
    )
    print(
        f"{'target':<12} {'path':<20} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
        f"{'app CPU':>8} {'db CPU':>7}"
    )
    for name, path in TARGETS.items():
        r = results[name]
        print(
            f"{name:<12} {path:<20} {r['rate']:>8.0f} {ms(r['p50_us']):>7} "
            f"{ms(r['p90_us']):>7} {ms(r['p99_us']):>7} "
            f"{r['app_cpu_ms']:>8.2f} {r['db_cpu_ms']:>7.2f}"
        )
    print("CPU: ms per request used by gunicorn (app) and by this database's PostgreSQL backends")
    errors = {k: create[k] + bare[k] for k in ("connect_errors", "read_errors", "timeouts")}
    print(f"socket errors: {errors}")
    print(
        f"notifications written while measured: {create['rows']} "
        f"(wrk counted {create['requests']} answers); tasks queued in the run: {queued} (purged)"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(f"ratio create/bare: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
    return ratio


def main() -> int:
    args = parse_args()
    wrk = wrk_ensure()
    env = server_env(args)
    database_recreate(args.database_url)
    queue_purge(args.redis_url, args.cluster_name)
    manage(env, "migrate", "--verbosity", "0")
    api_key = manage(env, "create_api_key", "Benchmark service").strip().splitlines()[-1]

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    server, base = gunicorn_start(args, env, workdir / "gunicorn.log")
    results = {}
    try:
        for name, path in TARGETS.items():
            print(f"warm-up {name} ({args.warmup} s)", flush=True)
            wrk_run(wrk, base + path, args.warmup, args, api_key)
        for name, path in TARGETS.items():
            before = notification_count(args.database_url)
            pids = server_pids(server, args.database_url)
            cpu_before = {group: cpu_seconds(members) for group, members in pids.items()}
            print(f"measuring {name} {path} ({args.duration} s)", flush=True)
            results[name] = wrk_run(wrk, base + path, args.duration, args, api_key)
            for group, members in pids.items():
                used = cpu_seconds(members) - cpu_before[group]
                results[name][f"{group}_cpu_ms"] = used * 1000 / max(results[name]["requests"], 1)
            results[name]["rows"] = notification_count(args.database_url) - before
    finally:
        server.terminate()
        server.wait(timeout=30)
        queued = queue_purge(args.redis_url, args.cluster_name)
    ratio = report(results, args, queued)
    print(f"server log: {workdir / 'gunicorn.log'}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    run(main)
