"""Batches and Idempotency-Key: texts accepted per second through `POST /notifications/sms/batch`
(1,000 a request) against single `POST /notifications/sms`, and single creates with a fresh
`Idempotency-Key` each against the same without one.

All three are served by the same gunicorn in the same run, on PostgreSQL with the Redis broker,
loaded by wrk over loopback. The targets take turns for --rounds rounds and each ratio is the
median of the rounds' ratios, so a burst of load from elsewhere on the machine spoils one round,
not the figure. No qcluster runs: the tasks only queue, and the queue is emptied after every
measurement. The database named by --database-url is dropped and made again (its name must
contain "bench").

    .venv/bin/python bench/api_batch.py   # --help

Targets: a batch of 1,000 accepts at least BATCH_TARGET times as many texts a second as single
creates; the key makes a single create at most KEY_TARGET slower (time per request). The exit
status is 0 when both are met, 1 when one is missed, 2 when the run itself went wrong.
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
)
from bench.common import (  # noqa: E402
    BenchError,
    CpuMeter,
    cpu_seconds,
    database_recreate,
    figure,
    gunicorn_pids,
    gunicorn_start,
    manage,
    queue_purge,
    results_write,
    run,
    spread,
    wrk_ensure,
    wrk_run,
)

WRK_SCRIPT = Path(__file__).resolve().with_name("post_json.lua")
BATCH_SIZE = 1000
BATCH_TARGET = 20.0
KEY_TARGET = 0.15
# name: (path, texts per request, a fresh Idempotency-Key on every request)
TARGETS = {
    "single": ("/notifications/sms", 1, False),
    "single + key": ("/notifications/sms", 1, True),
    "batch of 1000": ("/notifications/sms/batch", BATCH_SIZE, False),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    api_arguments(
        parser, name="batch", redis_db=14, duration=10, rounds=3,
        connections_help="wrk connections, singles",
    )  # fmt: skip
    parser.add_argument(
        "--batch-connections",
        type=int,
        default=2,
        help="wrk connections, batches (one per worker: a queued batch can pass wrk's 5 s timeout)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 3, 1, 1
    return args


def batch_body(path: Path) -> Path:
    text = {"phone_number": "07700 900123", "content": "Your security code is 123456"}
    items = [{**text, "reference": f"bench-{n}"} for n in range(BATCH_SIZE)]
    path.write_text(json.dumps({"notifications": items}))
    return path


def measure(wrk, base, name, seconds, args, api_key, body_file) -> dict:
    path, _, keyed = TARGETS[name]
    env = {**os.environ, "BENCH_API_KEY": api_key}
    if keyed:  # unique across rounds and runs
        env["BENCH_KEY_PREFIX"] = f"bench-{time.time_ns()}"
    if path.endswith("/batch"):
        env["BENCH_BODY_FILE"] = str(body_file)
    connections = args.batch_connections if path.endswith("/batch") else args.connections
    result = wrk_run(
        wrk, WRK_SCRIPT, base + path, seconds,
        connections=connections, threads=1, env=env, slack=60,
    )  # fmt: skip
    if result["non_2xx"] or result["timeouts"]:
        raise BenchError(
            f"{name}: {result['non_2xx']} answers not 2xx, {result['timeouts']} timeouts: "
            "the rate is not real"
        )
    return result


def settle(server, deadline_s: float = 120) -> None:
    """Wait until gunicorn is idle (under 10 ms of CPU in half a second): wrk stops with
    requests still queued (a batch takes a while), and their writes and CPU must not land in
    the next measurement."""
    deadline = time.monotonic() + deadline_s
    used = cpu_seconds(gunicorn_pids(server))
    while True:
        time.sleep(0.5)
        used, before = cpu_seconds(gunicorn_pids(server)), used
        if used - before < 0.01:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"gunicorn was still busy {deadline_s:.0f} s after wrk stopped")


def report(rounds: list[dict[str, dict]], args) -> dict:
    """Each round's figures, then the two ratios' medians (min–max) over the rounds."""
    print()
    print(
        f"gunicorn {args.workers} × {args.worker_class}; wrk 1 thread, {args.connections} "
        f"connections ({args.batch_connections} for batches), {args.duration} s per target per "
        f"round, {len(rounds)} rounds; {os.cpu_count()} cores; load average now: "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'round':<6} {'target':<14} {'req/s':>8} {'texts/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'app CPU':>9} {'db CPU':>8} {'rows':>8}"
    )
    for number, results in enumerate(rounds, 1):
        for name, r in results.items():
            print(
                f"{number:<6} {name:<14} {r['rate']:>8.1f} {r['texts_rate']:>9.0f} "
                f"{r['p50_us'] / 1000:>8.1f} {r['p99_us'] / 1000:>8.1f} "
                f"{r['app_cpu_ms']:>9.3f} {r['db_cpu_ms']:>8.3f} {r['rows']:>8}"
            )
    print("CPU: ms per TEXT used by gunicorn (app) and this database's PostgreSQL backends")
    outcome = {
        "batch": spread(one["batch of 1000"]["texts_rate"] / one["single"]["rate"]
                        for one in rounds),
        "key": spread(one["single"]["rate"] / one["single + key"]["rate"] - 1 for one in rounds),
        **{name: spread(one[name]["texts_rate"] for one in rounds) for name in TARGETS},
        "latency": {
            name: {k: spread(one[name][f"{k}_us"] / 1000 for one in rounds)["median"]
                   for k in ("p50", "p99")}
            for name in TARGETS
        },
    }  # fmt: skip
    batch, key = outcome["batch"], outcome["key"]
    print(
        f"texts/s batch of 1000 / single: {batch['median']:.1f} ({batch['min']:.1f}-"
        f"{batch['max']:.1f}; target >= {BATCH_TARGET:g}: "
        f"{'met' if batch['median'] >= BATCH_TARGET else 'MISSED'})"
    )
    print(
        f"Idempotency-Key overhead on a single create: {key['median']:+.1%} ({key['min']:+.1%} to "
        f"{key['max']:+.1%}; target <= {KEY_TARGET:.0%}: "
        f"{'met' if key['median'] <= KEY_TARGET else 'MISSED'})"
    )
    return outcome


def figures_write(args, outcome: dict) -> tuple[bool, bool]:
    """The two figures for bench/run.py; answers whether each target was met."""
    batch_met = outcome["batch"]["median"] >= BATCH_TARGET
    key_met = outcome["key"]["median"] <= KEY_TARGET
    latency = outcome["latency"]
    results_write(
        args.json,
        "api_batch",
        [
            figure(
                "API: texts/s through POST /notifications/sms/batch (1,000 a request)",
                value=outcome["batch of 1000"],
                unit="texts/s",
                baseline="single POST /notifications/sms",
                baseline_value=outcome["single"],
                ratio=outcome["batch"],
                target=f">= {BATCH_TARGET:g}",
                met=batch_met,
                latency_ms=latency["batch of 1000"],
            ),
            figure(
                "API: POST /notifications/sms with an Idempotency-Key",
                value=outcome["single + key"],
                unit="req/s",
                baseline="the same without the key",
                baseline_value=outcome["single"],
                ratio=outcome["key"],
                target=f"<= {KEY_TARGET:.0%} slower",
                met=key_met,
                latency_ms=latency["single + key"],
                note="ratio: time per request with the key / without, minus 1",
            ),
        ],
    )
    return batch_met, key_met


def main() -> int:
    args = parse_args()
    wrk = wrk_ensure()
    env = server_env(args)
    database_recreate(args.database_url)
    queue_purge(args.redis_url, args.cluster_name)
    manage(env, "migrate", "--verbosity", "0")
    api_key = manage(env, "create_api_key", "Benchmark service").strip().splitlines()[-1]

    workdir = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    body_file = batch_body(workdir / "batch.json")
    server, base = gunicorn_start(args, env, workdir / "gunicorn.log")
    rounds = []
    try:
        for name in TARGETS:
            print(f"warm-up {name} ({args.warmup} s)", flush=True)
            measure(wrk, base, name, args.warmup, args, api_key, body_file)
            settle(server)
            queue_purge(args.redis_url, args.cluster_name)
        for number in range(1, args.rounds + 1):
            results = {}
            for name in TARGETS:
                before = notification_count(args.database_url)
                pids = server_pids(server, args.database_url)
                meter = CpuMeter(pids)
                print(f"round {number}: {name} ({args.duration} s)", flush=True)
                result = measure(wrk, base, name, args.duration, args, api_key, body_file)
                settle(server)
                result["texts_rate"] = result["rate"] * TARGETS[name][1]
                # Per row written: the requests still queued when wrk stopped finished too.
                result["rows"] = notification_count(args.database_url) - before
                for group, used in meter.used().items():
                    result[f"{group}_cpu_ms"] = used * 1000 / max(result["rows"], 1)
                queue_purge(args.redis_url, args.cluster_name)
                results[name] = result
            rounds.append(results)
    finally:
        server.terminate()
        server.wait(timeout=30)
        queue_purge(args.redis_url, args.cluster_name)
    batch_met, key_met = figures_write(args, report(rounds, args))
    print(f"server log: {workdir / 'gunicorn.log'}")
    return 0 if batch_met and key_met else 1


if __name__ == "__main__":
    run(main)
