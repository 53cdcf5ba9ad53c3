"""What the benchmarks share: the bench database, the server environment, manage.py, gunicorn,
wrk, CPU read from /proc, the Django Q queue and the exit on a failed run.

The scripts run as `.venv/bin/python bench/<name>.py` from the repository root, so each puts the
root on sys.path and imports this module as `bench.common`, the name the processes they start
(gunicorn, qcluster) import it by too. Heavy imports stay inside the functions that need them.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """The run could not produce a trustworthy figure."""


def run(main) -> None:
    """Exit with main's status, or 2 with the reason when the run itself went wrong."""
    try:
        sys.exit(main())
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        sys.exit(2)


# --- the database and the environment -------------------------------------------------------------


def database_recreate(url: str) -> None:
    """Drop and make the benchmark's own database, so every run starts from empty tables."""
    import dj_database_url
    import psycopg

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


def base_env(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment, production-like, on the bench database, without statsd."""
    env = {
        **os.environ,
        "DEBUG": "false",  # production-like: DEBUG keeps every SQL query in memory
        "SECRET_KEY": "bench-only-secret-key-not-for-production",
        "API_KEY_ENCRYPTION_KEYS": "YmVuY2gtb25seS1rZXktbm90LWZvci1wcm9kdWN0aW8=",
        "DATABASE_URL": database_url,
        **settings,
    }
    env.pop("STATSD_HOST", None)
    return env


def delivery_env(args, *, log_level: str = "WARNING", **settings: str) -> dict[str, str]:
    """`base_env` for a benchmark that runs qclusters against the fake providers (`args` has
    `database_url`, `redis_url` and `cluster_name`): the fakes' keys, a provider timeout a
    loaded machine can't trip, and no receipts posted anywhere (the receipt URLs and the basic
    auth left to each fake's own)."""
    env = base_env(
        args.database_url,
        REDIS_URL=args.redis_url,
        Q_CLUSTER_NAME=args.cluster_name,
        LOG_LEVEL=log_level,
        FIRETEXT_API_KEY="bench",
        MMG_API_KEY="bench",
        PROVIDER_TIMEOUT_SECONDS="5",
        **settings,
    )
    for name in ("FIRETEXT_RECEIPT_URL", "MMG_RECEIPT_URL", "CALLBACK_BASIC_AUTH"):
        env.pop(name, None)
    return env


def manage(env: dict[str, str], *argv: str) -> str:
    """`manage.py <argv>` in the repository root; answers what it printed."""
    done = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise BenchError(f"manage.py {' '.join(argv)} failed:\n{done.stderr}")
    return done.stdout


def manage_start(
    env: dict[str, str], log: Path, *argv: str, session: bool = False
) -> subprocess.Popen:
    """`manage.py <argv>` in the background (a qcluster, the fake providers); stderr to `log`.
    With `session`, in a session of its own, which `process_stop` can kill whole."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        start_new_session=session,
    )


def django_setup(env: dict[str, str]) -> None:
    """Django in this process, with the environment the servers get."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyproject.settings")
    import django

    django.setup()


def queue_purge(redis_url: str, cluster_name: str) -> int:
    """Empty a Django Q cluster's Redis queues (deliveries; callbacks and receipts on their own);
    answers how many tasks were in them."""
    import redis

    connection = redis.Redis.from_url(redis_url)
    queued = 0
    for name in (cluster_name, f"{cluster_name}-callbacks", f"{cluster_name}-receipts"):
        key = f"django_q:{name}:q"
        queued += connection.llen(key)
        connection.delete(key)
    return queued


def free_port() -> int:
    """A loopback port nothing listens on right now, for a child process to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_stop(process: subprocess.Popen | None, *, timeout: float) -> None:
    """SIGTERM (a qcluster then finishes its tasks), then SIGKILL to the whole session it leads
    (started with `start_new_session=True`), so no forked worker is left behind."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- gunicorn and wrk -----------------------------------------------------------------------------


def gunicorn_arguments(parser) -> None:
    """The options gunicorn_start reads."""
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")


def gunicorn_start(
    args, env, log: Path, app: str = "notifyproject.wsgi:application"
) -> tuple[subprocess.Popen, str]:
    """gunicorn on an ephemeral loopback port; answers its base URL once /livez answers."""
    command = [
        sys.executable, "-m", "gunicorn", app,
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


def gunicorn_pids(server: subprocess.Popen) -> list[int]:
    """The gunicorn master and its workers."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [server.pid, *map(int, children)]


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


def wrk_run(
    wrk: str, script: Path, url: str, seconds: int, *, connections, threads, env, slack: int
) -> dict:
    """One wrk run with a Lua script whose done() prints `BENCH_RESULT {json}`; answers that
    JSON with the rate in requests per second."""
    command = [
        wrk, "--script", str(script), "--duration", f"{seconds}s", "--timeout", "5s",
        "--connections", str(connections), "--threads", str(threads), url,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + slack)
    found = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode or not found:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(found.group(1))
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


# --- CPU ------------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """CPU the process has used so far (user + system, Linux /proc); None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime ticks


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used, 0 for one that is gone."""
    return sum(used for pid in pids if (used := process_cpu_seconds(pid)) is not None)


class CpuMeter:
    """CPU used by groups of processes (`{"app": pids, "db": pids}`) since it was made. A process
    gone by the end (a database backend whose connection closed) counts nothing, so a group's
    figure is never negative; it may miss that process's last moments."""

    def __init__(self, groups: dict[str, list[int]]):
        self.before = {
            group: {pid: process_cpu_seconds(pid) for pid in pids} for group, pids in groups.items()
        }

    def used(self) -> dict[str, float]:
        used = {}
        for group, before in self.before.items():
            used[group] = 0.0
            for pid, start in before.items():
                end = process_cpu_seconds(pid)
                if start is not None and end is not None:
                    used[group] += end - start
        return used


# --- results: what `bench/run.py` collects ---------------------------------------------------


def results_arguments(parser) -> None:
    """--quick (a smoke check: shorter, fewer rounds) and --json (where the figures go)."""
    parser.add_argument("--quick", action="store_true", help="a smoke check: short and few")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")


def spread(values) -> dict:
    """Median, min and max of the rounds' values."""
    import statistics

    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def figure(
    name: str,
    *,
    value: dict,
    unit: str,
    baseline: str | None = None,
    baseline_value: dict | None = None,
    ratio: dict | None = None,
    target: str | None = None,
    met: bool | None = None,
    latency_ms: dict | None = None,
    note: str = "",
) -> dict:
    """One line of the results table: a figure (median, min, max over the rounds), its
    baseline from the same run, their ratio, the target and whether it was met."""
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "target": target,
        "met": met,
        "latency_ms": latency_ms or {},
        "note": note,
    }


def results_write(path: Path | None, bench: str, figures: list[dict], **context) -> None:
    """The benchmark's figures as JSON, for bench/run.py (nothing when --json was not given)."""
    if path is None:
        return
    record = {
        "bench": bench,
        "figures": figures,
        "load_average": os.getloadavg(),
        "cores": os.cpu_count(),
        **context,
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")


def bench_database_url(name: str) -> str:
    """The default database of one benchmark: `<BENCH_DATABASE_PREFIX>_<name>` (default prefix
    notify_bench), so that people sharing a PostgreSQL can keep their runs apart."""
    prefix = os.environ.get("BENCH_DATABASE_PREFIX", "notify_bench")
    return f"postgres://postgres@127.0.0.1:5432/{prefix}_{name}"


def bench_redis_url(db: int) -> str:
    """The default Redis of one benchmark: BENCH_REDIS_URL when set, else its own db number."""
    return os.environ.get("BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{db}")


# --- filling tables by SQL ------------------------------------------------------------------------


def insert_select(model, known: dict[str, str], source: str, params: dict | None = None) -> None:
    """`INSERT INTO <model's table> SELECT … FROM <source>`: each column from `known` (an SQL
    expression over `source`), the others the model field's default, so fields added later
    need no change here. `params` are named (`%(name)s`) for the expressions and the source."""
    from django.db import connection

    columns, expressions, values = [], [], dict(params or {})
    for field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.column in known:
            expressions.append(known[field.column])
        elif field.primary_key and not known.get(field.column):
            columns.pop()  # an automatic primary key: the sequence gives it
        else:
            default = field.get_default() if field.has_default() or not field.null else None
            values[f"default_{field.column}"] = field.get_db_prep_save(default, connection)
            expressions.append(f"%(default_{field.column})s")
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(expressions)} FROM {source}",
            values,
        )


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (Linux /proc)."""
    from contextlib import suppress

    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found
