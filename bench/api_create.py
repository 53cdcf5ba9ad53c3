"""How fast the API accepts texts: `POST /notifications/sms` against a plain Django view that
makes the same writes (bench/baselines.py: one notification row, one statistics upsert, one
broker push; no DRF, authentication or validation), and the bare `POST /livez` for reference.

All three are served by the same gunicorn in the same run, on PostgreSQL with the Redis broker,
and loaded by wrk over loopback in alternating rounds of a bounded time each, after a warm-up;
medians over the rounds, with min and max. No qcluster runs: the delivery tasks only queue,
and the queue is emptied at the end. The database named by --database-url is dropped and made
again on every run, so it must be the benchmark's own (its name must contain "bench").

    make bench-api                        # or: .venv/bin/python bench/api_create.py --help

Target: the create endpoint serves at least TARGET_RATIO of the same-work view's requests per
second (median of the rounds' ratios). Exit status 0 when it does, 1 when it misses, 2 when the
run itself went wrong.
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
    CpuMeter,
    base_env,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    figure,
    gunicorn_arguments,
    gunicorn_pids,
    gunicorn_start,
    manage,
    queue_purge,
    results_arguments,
    results_write,
    run,
    spread,
    wrk_ensure,
)
from bench.common import wrk_run as wrk_run_script  # noqa: E402

WRK_SCRIPT = Path(__file__).resolve().with_name("post_json.lua")
TARGET_RATIO = 0.5
TARGETS = {
    "bare view": "/livez",
    "same-work view": "/bench/same-work/create",
    "create SMS": "/notifications/sms",
}
APP = "bench.baselines:application()"


def api_arguments(
    parser, *, name: str, redis_db: int, duration: int = 8, rounds: int = 5,
    connections_help: str = "wrk connections",
) -> None:  # fmt: skip
    """What every API benchmark takes (this one, api_v2_create, api_batch): its database, Redis
    db and cluster, gunicorn's options, the rounds and wrk's connections, --quick and --json."""
    parser.add_argument("--database-url", default=bench_database_url(name))
    parser.add_argument("--redis-url", default=bench_redis_url(redis_db))
    parser.add_argument("--cluster-name", default=f"notify-bench-{name.replace('_', '-')}")
    gunicorn_arguments(parser)
    parser.add_argument(
        "--duration", type=int, default=duration, help="seconds per target per round"
    )
    parser.add_argument("--rounds", type=int, default=rounds, help="alternating measured rounds")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=8, help=connections_help)
    parser.add_argument("--rate-limit", default="100000000/sec", help="API_RATE_LIMIT")
    results_arguments(parser)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    api_arguments(parser, name="api", redis_db=9)
    parser.add_argument("--wrk-threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 3, 2, 1
    return args


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


def wrk_run(wrk: str, url: str, seconds: int, args, api_key: str, body_file=None) -> dict:
    """`post_json.lua` with `api_key` as the bearer (a key, or a /v2 JWT) and its own body, or
    `body_file`'s; every answer must be a 2xx."""
    env = {**os.environ, "BENCH_API_KEY": api_key}
    if body_file is not None:
        env["BENCH_BODY_FILE"] = str(body_file)
    result = wrk_run_script(
        wrk, WRK_SCRIPT, url, seconds,
        connections=args.connections, threads=args.wrk_threads, env=env, slack=30,
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


def report(rounds: list[dict[str, dict]], args, queued: int) -> dict:
    """Medians over the rounds (min–max); answers the create/same-work ratio's spread."""
    print()
    print(
        f"gunicorn {args.workers} × {args.worker_class}"
        + (f" ({args.threads} threads)" if args.worker_class == "gthread" else "")
        + f"; wrk {args.wrk_threads} thread(s), {args.connections} connections; "
        f"{args.rounds} rounds of {args.duration} s per target after {args.warmup} s warm-up; "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'target':<15} {'path':<26} {'req/s (min-max)':>22} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'app CPU':>8} {'db CPU':>7}"
    )
    summary = {}
    for name, path in TARGETS.items():
        runs = [one[name] for one in rounds]
        rate = spread(r["rate"] for r in runs)
        summary[name] = {
            "rate": rate,
            **{k: spread(r[k] for r in runs)["median"] for k in ("app_cpu_ms", "db_cpu_ms")},
            **{
                f"{k}_ms": spread(r[f"{k}_us"] / 1000 for r in runs)["median"]
                for k in ("p50", "p99")
            },
        }
        one = summary[name]
        print(
            f"{name:<15} {path:<26} {rate['median']:>8.0f} ({rate['min']:.0f}-{rate['max']:.0f})"
            f"{'':>4} {one['p50_ms']:>7.1f} {one['p99_ms']:>7.1f} "
            f"{one['app_cpu_ms']:>8.2f} {one['db_cpu_ms']:>7.2f}"
        )
    print("CPU: ms per request used by gunicorn (app) and by this database's PostgreSQL backends")
    written = {name: sum(one[name]["rows"] for one in rounds) for name in TARGETS}
    answered = {name: sum(one[name]["requests"] for one in rounds) for name in TARGETS}
    print(
        f"notifications written while measured: {written['create SMS']} by creates "
        f"({answered['create SMS']} answers), {written['same-work view']} by the same-work view "
        f"({answered['same-work view']} answers); tasks queued in the run: {queued} (purged)"
    )
    ratios = {
        baseline: spread(one["create SMS"]["rate"] / one[baseline]["rate"] for one in rounds)
        for baseline in ("same-work view", "bare view")
    }
    ratio = ratios["same-work view"]
    verdict = "met" if ratio["median"] >= TARGET_RATIO else "MISSED"
    print(
        f"ratio create/same-work: {ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f}; "
        f"target >= {TARGET_RATIO}: {verdict}); create/bare {ratios['bare view']['median']:.2f}"
    )
    return {"summary": summary, "ratio": ratio}


def main() -> int:
    args = parse_args()
    wrk = wrk_ensure()
    env = server_env(args)
    database_recreate(args.database_url)
    queue_purge(args.redis_url, args.cluster_name)
    manage(env, "migrate", "--verbosity", "0")
    api_key = manage(env, "create_api_key", "Benchmark service").strip().splitlines()[-1]

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    server, base = gunicorn_start(args, env, workdir / "gunicorn.log", APP)
    rounds = []
    try:
        for name, path in TARGETS.items():
            print(f"warm-up {name} ({args.warmup} s)", flush=True)
            wrk_run(wrk, base + path, args.warmup, args, api_key)
        for number in range(1, args.rounds + 1):
            results = {}
            for name, path in TARGETS.items():
                before = notification_count(args.database_url)
                pids = server_pids(server, args.database_url)
                meter = CpuMeter(pids)
                result = wrk_run(wrk, base + path, args.duration, args, api_key)
                for group, used in meter.used().items():
                    result[f"{group}_cpu_ms"] = used * 1000 / max(result["requests"], 1)
                result["rows"] = notification_count(args.database_url) - before
                results[name] = result
            rounds.append(results)
            print(
                f"round {number}: "
                + ", ".join(f"{name} {r['rate']:.0f}/s" for name, r in results.items()),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        queued = queue_purge(args.redis_url, args.cluster_name)
    outcome = report(rounds, args, queued)
    summary, ratio = outcome["summary"], outcome["ratio"]
    met = ratio["median"] >= TARGET_RATIO
    create, same = summary["create SMS"], summary["same-work view"]
    results_write(
        args.json,
        "api_create",
        [
            figure(
                "API: POST /notifications/sms",
                value=create["rate"],
                unit="req/s",
                baseline="same-work view (/bench/same-work/create)",
                baseline_value=same["rate"],
                ratio=ratio,
                target=f">= {TARGET_RATIO}",
                met=met,
                latency_ms={"p50": create["p50_ms"], "p99": create["p99_ms"]},
                note=f"web CPU {create['app_cpu_ms']:.2f} ms/create vs {same['app_cpu_ms']:.2f} "
                f"same-work; PostgreSQL {create['db_cpu_ms']:.2f} vs {same['db_cpu_ms']:.2f}",
            ),
        ],
        bare_rate=summary["bare view"]["rate"],
    )
    print(f"server log: {workdir / 'gunicorn.log'}")
    return 0 if met else 1


if __name__ == "__main__":
    run(main)
