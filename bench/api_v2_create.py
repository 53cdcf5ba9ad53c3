"""What a GOV.UK Notify-style send costs: `POST /v2/notifications/sms` (the JWT checked, the
template found and filled in) against `POST /notifications/sms` (contract section 4) with the same
text, served by the same gunicorn in the same run, on PostgreSQL with the Redis broker.

wrk loads the two in alternating rounds over loopback (after a warm-up), both with
`post_json.lua`: section 4 posts its text with the key string as its bearer key; /v2 posts
`v2_body`, the same text as a template (`Your security code is ((code))`) and its
personalisation, with a JWT signed just before each round as the bearer (tokens are good for
30 s, a round is shorter), so the server checks a token in full on every request. No qcluster
runs; the queue is emptied at the end. The database is the benchmark's own, dropped and made again.

    .venv/bin/python bench/api_v2_create.py            # --rounds 5 --duration 8, see --help

Target: a /v2 send costs at most TARGET times a section 4 send, in CPU per request (gunicorn and
this database's PostgreSQL backends; the median of the rounds' ratios). The rate ratio is shown
beside it. Exit status 0 when met, 1 when missed, 2 when the run itself went wrong.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.api_create import (  # noqa: E402
    api_arguments,
    notification_count,
    server_env,
    server_pids,
    wrk_run,
)
from bench.common import (  # noqa: E402
    BenchError,
    CpuMeter,
    database_recreate,
    figure,
    gunicorn_start,
    manage,
    queue_purge,
    results_write,
    run,
    spread,
    wrk_ensure,
)

TARGET = 1.2
TEMPLATE_BODY = "Your security code is ((code))"  # filled in: post_json.lua's content
TARGETS = {"section 4": "/notifications/sms", "v2": "/v2/notifications/sms"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    api_arguments(parser, name="api_v2", redis_db=10)
    parser.add_argument("--wrk-threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 3, 2, 1
    return args


def v2_body(template_id: str) -> bytes:
    """The /v2 request: renders to the same text as `post_json.lua`'s section 4 request."""
    return json.dumps(
        {
            "phone_number": "07700 900123",
            "template_id": template_id,
            "personalisation": {"code": "123456"},
            "reference": "bench",
        }
    ).encode()


def v2_token(api_key: str) -> str:
    """The token GOV.UK Notify's clients send: HS256, `iss` the service id, `iat` now."""
    import jwt

    service_id, secret = api_key[-73:-37], api_key[-36:]
    return jwt.encode({"iss": service_id, "iat": int(time.time())}, secret, algorithm="HS256")


def load(wrk: str, name: str, base: str, seconds: int, args, api_key: str, v2_body_file: Path):
    if name == "v2":  # with a token signed now, and the template's request
        token = v2_token(api_key)
        return wrk_run(wrk, base + TARGETS[name], seconds, args, token, body_file=v2_body_file)
    return wrk_run(wrk, base + TARGETS[name], seconds, args, api_key)


def measure(wrk, name, base, args, api_key, v2_body_file, server) -> dict:
    before = notification_count(args.database_url)
    pids = server_pids(server, args.database_url)
    meter = CpuMeter(pids)
    result = load(wrk, name, base, args.duration, args, api_key, v2_body_file)
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
    v2_body_file = workdir / "v2.json"
    v2_body_file.write_bytes(v2_body(template_id))
    server, base = gunicorn_start(args, env, workdir / "gunicorn.log")
    rounds = []
    try:
        for name in TARGETS:
            print(f"warm-up {name} ({args.warmup} s)", flush=True)
            load(wrk, name, base, args.warmup, args, api_key, v2_body_file)
        for number in range(1, args.rounds + 1):
            results = {
                name: measure(wrk, name, base, args, api_key, v2_body_file, server)
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
    for name, path in TARGETS.items():
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
