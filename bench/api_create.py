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
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dj_database_url
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).resolve().with_name("post_json.lua")
TARGET_RATIO = 0.5
TARGETS = {"bare view": "/livez", "create SMS": "/notifications/sms"}


class BenchError(Exception):
    """The run could not produce a trustworthy figure."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/notify_bench_api"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--cluster-name", default="notify-bench-api")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--duration", type=int, default=15, help="seconds measured per target")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--rate-limit", default="100000000/sec", help="API_RATE_LIMIT")
    return parser.parse_args()


def wrk_ensure() -> str:
    """wrk from Debian's packages, installed when missing."""
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", flush=True)
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        quiet = {"stdout": subprocess.DEVNULL, "env": apt_env}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet).returncode:
            subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, **quiet)
    path = shutil.which("wrk")
    if not path:
        raise BenchError("wrk could not be installed")
    return path


def database_recreate(url: str) -> None:
    """Drop and make the benchmark's own database, so every run starts from empty tables."""
    config = dj_database_url.parse(url)
    name = config["NAME"]
    if "postgresql" not in config["ENGINE"] or "bench" not in name:
        raise BenchError(f"--database-url must be a PostgreSQL database named *bench*: {url}")
    maintenance = {
        "host": config["HOST"],
        "port": config["PORT"] or 5432,
        "user": config["USER"],
        "password": config["PASSWORD"] or None,
        "dbname": "postgres",
    }
    with psycopg.connect(**maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def notification_count(url: str) -> int:
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute("SELECT count(*) FROM sending_notification").fetchone()[0]


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        **os.environ,
        "DEBUG": "false",  # production-like: DEBUG keeps every SQL query in memory
        "SECRET_KEY": "bench-only-secret-key-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "Q_CLUSTER_NAME": args.cluster_name,
        "API_RATE_LIMIT": args.rate_limit,
    }
    env.pop("STATSD_HOST", None)
    return env


def manage(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise BenchError(f"manage.py {' '.join(argv)} failed:\n{done.stderr}")
    return done.stdout


def gunicorn_start(args, env, log: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn on an ephemeral loopback port; answers its base URL once /livez answers."""
    command = [
        sys.executable, "-m", "gunicorn", "notifyproject.wsgi:application",
        "--bind", "127.0.0.1:0",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
    ]  # fmt: skip
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"gunicorn exited with {server.returncode}:\n{log.read_text()}")
        found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log.read_text())
        if found and _answers(f"{found.group(1)}/livez"):
            return server, found.group(1)
        time.sleep(0.2)
    server.terminate()
    raise BenchError(f"gunicorn did not answer within 30 s:\n{log.read_text()}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return response.status == 200
    except OSError:
        return False


def wrk_run(wrk: str, url: str, seconds: int, args, api_key: str) -> dict:
    command = [
        wrk, "--script", str(WRK_SCRIPT), "--duration", f"{seconds}s", "--timeout", "5s",
        "--connections", str(args.connections), "--threads", str(args.wrk_threads), url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_API_KEY": api_key}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 30)
    found = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode or not found:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(found.group(1))
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    if result["non_2xx"]:
        raise BenchError(f"{url}: {result['non_2xx']} answers were not 2xx: the rate is not real")
    return result


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used (Linux /proc), 0 for one that is gone."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(server: subprocess.Popen, database_url: str) -> dict[str, list[int]]:
    """The gunicorn master and workers, and the PostgreSQL backends serving this database."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    name = dj_database_url.parse(database_url)["NAME"]
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return {"app": [server.pid, *map(int, children)], "db": [pid for (pid,) in backends]}


def queue_purge(args) -> int:
    """Empty this run's Django Q queue (no qcluster ran); answers how many tasks were in it."""
    connection = redis.Redis.from_url(args.redis_url)
    key = f"django_q:{args.cluster_name}:q"
    queued = connection.llen(key)
    connection.delete(key)
    return queued


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
    queue_purge(args)
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
        queued = queue_purge(args)
    ratio = report(results, args, queued)
    print(f"server log: {workdir / 'gunicorn.log'}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        sys.exit(2)
