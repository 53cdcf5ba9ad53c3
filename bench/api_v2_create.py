"""What a GOV.UK Notify-style send costs: `POST /v2/notifications/sms` (the JWT checked, the
template found and filled in) against `POST /notifications/sms` (contract section 4) with the same
text, served by the same gunicorn in the same run, on PostgreSQL with the Redis broker.

wrk loads the two in alternating rounds over loopback (after a warm-up), each with its own Lua
script: section 4 posts `post_json.lua`'s text with the key string as its bearer key; /v2 posts
`post_json_v2.lua`, the same text as a template (`Your security code is ((code))`) and its
personalisation, with a JWT signed just before each round (tokens are good for 30 s, a round is
shorter), so the server checks a token in full on every request. No qcluster runs; the queue is
emptied at the end. The database is the benchmark's own, dropped and made again.

    .venv/bin/python bench/api_v2_create.py            # --rounds 5 --duration 8, see --help

Target: a /v2 send costs at most TARGET times a section 4 send, in CPU per request (gunicorn and
this database's PostgreSQL backends; the median of the rounds' ratios). The rate ratio is shown
beside it. Exit status 0 when met, 1 when missed, 2 when the run itself went wrong.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.api_create import notification_count, server_env, server_pids  # noqa: E402
from bench.common import (  # noqa: E402
    BenchError,
    CpuMeter,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    figure,
    gunicorn_arguments,
    gunicorn_start,
    manage,
    queue_purge,
    results_arguments,
    results_write,
    run,
    spread,
    wrk_ensure,
    wrk_run,
)

HERE = Path(__file__).resolve().parent
TARGET = 1.2
TEMPLATE_BODY = "Your security code is ((code))"  # filled in: post_json.lua's content
TARGETS = {
    "section 4": ("/notifications/sms", HERE / "post_json.lua"),
    "v2": ("/v2/notifications/sms", HERE / "post_json_v2.lua"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("api_v2"))
    parser.add_argument("--redis-url", default=bench_redis_url(10))
    parser.add_argument("--cluster-name", default="notify-bench-api-v2")
    gunicorn_arguments(parser)
    parser.add_argument("--duration", type=int, default=8, help="seconds per target per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measured rounds")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--rate-limit", default="100000000/sec", help="API_RATE_LIMIT")
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 3, 2, 1
    return args


def v2_token(api_key: str) -> str:
    """The token GOV.UK Notify's clients send: HS256, `iss` the service id, `iat` now."""
    import jwt

    service_id, secret = api_key[-73:-37], api_key[-36:]
    return jwt.encode({"iss": service_id, "iat": int(time.time())}, secret, algorithm="HS256")


def load(wrk: str, name: str, base: str, seconds: int, args, api_key: str, template_id: str):
    path, script = TARGETS[name]
    env = {
        **os.environ,
        "BENCH_API_KEY": api_key,
        "BENCH_TEMPLATE_ID": template_id,
        "BENCH_TOKEN": v2_token(api_key),
    }
    result = wrk_run(
        wrk,
        script,
        base + path,
        seconds,
        connections=args.connections,
        threads=args.wrk_threads,
        env=env,
        slack=30,
    )
    if result["non_2xx"]:
        raise BenchError(f"{path}: {result['non_2xx']} answers were not 2xx: the rate is not real")
    return result


def measure(wrk, name, base, args, api_key, template_id, server) -> dict:
    before = notification_count(args.database_url)
    pids = server_pids(server, args.database_url)
    meter = CpuMeter(pids)
    result = load(wrk, name, base, args.duration, args, api_key, template_id)
    for group, used in meter.used().items():
        result[f"{group}_cpu_ms"] = used * 1000 / max(result["requests"], 1)
    result["cpu_ms"] = result["app_cpu_ms"] + result["db_cpu_ms"]
    result["rows"] = notification_count(args.database_url) - before
    if result["rows"] < result["requests"]:
        raise BenchError(f"{name}: {result['rows']} rows for {result['requests']} answers")
    return result


def main() -> int:
    args = parse_args()
    wrk = wrk_ensure()
    env = server_env(args)
    database_recreate(args.database_url)
    queue_purge(args.redis_url, args.cluster_name)
    manage(env, "migrate", "--verbosity", "0")
    api_key = manage(env, "create_api_key", "Benchmark service").strip().splitlines()[-1]
    template_id = (
        manage(
            env,
            "create_template",
            "Benchmark service",
            "--type",
            "sms",
            "--name",
            "Code",
            "--body",
            TEMPLATE_BODY,
        )
        .strip()
        .splitlines()[-1]
    )

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-v2-"))
    server, base = gunicorn_start(args, env, workdir / "gunicorn.log")
    rounds = []
    try:
        for name in TARGETS:
            print(f"warm-up {name} ({args.warmup} s)", flush=True)
            load(wrk, name, base, args.warmup, args, api_key, template_id)
        for number in range(1, args.rounds + 1):
            results = {
                name: measure(wrk, name, base, args, api_key, template_id, server)
                for name in TARGETS
            }
            rounds.append(results)
            print(
                f"round {number}: "
                + ", ".join(
                    f"{name} {r['rate']:.0f}/s {r['cpu_ms']:.2f} ms CPU"
                    for name, r in results.items()
                ),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        queued = queue_purge(args.redis_url, args.cluster_name)

    summary = {
        name: {
            key: spread(one[name][key] for one in rounds)
            for key in ("rate", "app_cpu_ms", "db_cpu_ms", "cpu_ms", "p50_us", "p99_us")
        }
        for name in TARGETS
    }
    cost = spread(one["v2"]["cpu_ms"] / one["section 4"]["cpu_ms"] for one in rounds)
    by_rate = spread(one["section 4"]["rate"] / one["v2"]["rate"] for one in rounds)
    print()
    print(
        f"gunicorn {args.workers} × {args.worker_class}; wrk {args.connections} connections; "
        f"{args.rounds} rounds of {args.duration} s per target; {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'target':<10} {'path':<24} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'app CPU':>8} {'db CPU':>7}"
    )
    for name, (path, _) in TARGETS.items():
        s = summary[name]
        print(
            f"{name:<10} {path:<24} {s['rate']['median']:>7.0f} "
            f"{s['p50_us']['median'] / 1000:>7.1f} {s['p99_us']['median'] / 1000:>7.1f} "
            f"{s['app_cpu_ms']['median']:>8.2f} {s['db_cpu_ms']['median']:>7.2f}"
        )
    print("CPU: ms per request used by gunicorn (app) and by this database's PostgreSQL backends")
    print(f"tasks queued in the run: {queued} (purged)")
    met = cost["median"] <= TARGET
    print(
        f"v2 cost / section 4 cost (CPU per request): {cost['median']:.2f} "
        f"({cost['min']:.2f}-{cost['max']:.2f}; target <= {TARGET}: "
        f"{'met' if met else 'MISSED'}); by rate: {by_rate['median']:.2f}"
    )
    v2, plain = summary["v2"], summary["section 4"]
    results_write(
        args.json,
        "api_v2_create",
        [
            figure(
                "API: POST /v2/notifications/sms (CPU per send)",
                value=v2["cpu_ms"],
                unit="ms CPU",
                baseline="POST /notifications/sms, same text",
                baseline_value=plain["cpu_ms"],
                ratio=cost,
                target=f"<= {TARGET}",
                met=met,
                latency_ms={
                    "p50": v2["p50_us"]["median"] / 1000,
                    "p99": v2["p99_us"]["median"] / 1000,
                },
                note=f"{v2['rate']['median']:.0f} vs {plain['rate']['median']:.0f} req/s "
                f"(rate ratio {by_rate['median']:.2f})",
            )
        ],
    )
    print(f"server log: {workdir / 'gunicorn.log'}")
    return 0 if met else 1


if __name__ == "__main__":
    run(main)
