"""A service's texts and status callbacks while two other services' callback endpoints are slow,
against the same service alone (contract section 10, "fair"; issue 20).

PostgreSQL + Redis, gunicorn, one `manage.py qcluster` (the delivery cluster and the callbacks
cluster it starts), the fake providers posting a `delivered` receipt at once, and three callback
receivers in this process: two answering after `--slow-seconds` (2 s, inside the 5 s timeout),
one at once. The third service sends `--texts` texts one a second, first alone, then once the
two slow services have each a backlog of `--backlog` callbacks under way. For each of its texts:
the time from the API call to the fake provider's receiving it, and to its callback arriving.

    .venv/bin/python bench/callbacks_fairness.py          # --texts 20 --backlog 200; --quick

Targets: with the slow neighbours, the third service's p95 time to the provider and to its
callback at most 2 s more than alone (before issue 20: 27-45 s and 15-47 s). One text and its
callback go through first, unmeasured, so both clusters are up before the clock starts. Exit
status 0 when met, 1 when missed, 2 when the run itself went wrong. The database named by
--database-url is dropped and made again, so its name must contain "bench".
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    BenchError,
    base_env,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    figure,
    free_port,
    gunicorn_arguments,
    gunicorn_start,
    manage,
    manage_start,
    process_stop,
    queue_purge,
    results_arguments,
    results_write,
    run,
)

CLUSTER = "notify-bench-fairness"
# What slow neighbours may add to the third service's p95, on a machine shared with them.
MARGIN_MS = 2000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("callbacks_fairness"))
    parser.add_argument("--redis-url", default=bench_redis_url(15))
    parser.add_argument("--texts", type=int, default=20, help="the third service's, per phase")
    parser.add_argument("--backlog", type=int, default=200, help="texts per slow service")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--q-workers", type=int, default=2, help="delivery workers")
    parser.add_argument("--callback-workers", type=int, default=4)
    gunicorn_arguments(parser)
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.texts, args.backlog = 5, 60
    return args


class Receiver:
    """A service's callback endpoint: answers after `delay`, keeps when each callback came (by
    notification id) and the most requests it held at once."""

    def __init__(self, delay: float) -> None:
        self.arrived: dict[str, float] = {}
        self.count = self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.arrived[body.get("id")] = time.time()
                    receiver.count += 1
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                time.sleep(delay)
                with receiver.lock:
                    receiver.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def http(method: str, url: str, body: dict | None = None, key: str | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=60) as response:  # loopback only
        return json.loads(response.read() or b"null")


def fakes_wait(fake_url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            provider_times(fake_url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError("the fake providers did not answer within 60 s") from None
            time.sleep(0.2)


def provider_times(fake_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{fake_url}/_requests", timeout=30) as response:
        found = json.loads(response.read())["requests"]
    return {r["reference"]: datetime.fromisoformat(r["time"]).timestamp() for r in found}


def phase(web: str, fake_url: str, key: str, prompt: Receiver, texts: int) -> dict[str, list]:
    """The third service's texts, one a second; each one's ms to the provider and to its
    callback."""
    sent: dict[str, float] = {}
    for _ in range(texts):
        started = time.time()
        body = {"phone_number": "07700 900123", "content": "Your code is 1234"}
        sent[http("POST", f"{web}/notifications/sms", body, key)["id"]] = started
        time.sleep(max(0.0, started + 1 - time.time()))
    deadline = time.monotonic() + 120
    while True:
        at_provider = provider_times(fake_url)
        if all(n in at_provider and n in prompt.arrived for n in sent):
            break
        if time.monotonic() > deadline:
            raise BenchError("the third service's texts or callbacks did not all arrive in 120 s")
        time.sleep(0.2)
    return {
        "provider": [(at_provider[n] - at) * 1000 for n, at in sent.items()],
        "callback": [(prompt.arrived[n] - at) * 1000 for n, at in sent.items()],
    }


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1], "p95": p95}


def main() -> int:
    args = parse_args()
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    env = base_env(
        args.database_url,
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=args.redis_url,
        Q_CLUSTER_NAME=CLUSTER,
        Q_WORKERS=str(args.q_workers),
        CALLBACK_WORKERS=str(args.callback_workers),
        SERVICE_CALLBACK_ALLOW_INSECURE="true",
        LOG_LEVEL="WARNING",
        API_RATE_LIMIT="100000/min",
        FIRETEXT_URL=f"{fake_url}/firetext",
        MMG_URL=f"{fake_url}/mmg",
        FIRETEXT_API_KEY="bench",
        MMG_API_KEY="bench",
    )
    env.pop("CALLBACK_BASIC_AUTH", None)
    database_recreate(args.database_url)
    queue_purge(args.redis_url, CLUSTER)
    manage(env, "migrate", "--verbosity", "0")
    keys = [manage(env, "create_api_key", name).strip().splitlines()[-1] for name in
            ("Slow 1", "Slow 2", "Prompt")]  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    slow = [Receiver(args.slow_seconds), Receiver(args.slow_seconds)]
    prompt = Receiver(0.0)
    processes = []
    try:
        server, web = gunicorn_start(args, env, workdir / "gunicorn.log")
        processes.append(server)
        fakes = ["--port", str(fake_port), "--receipts-to", web, "--receipt-delay", "0",
                 "--outcomes", "delivered=100"]  # fmt: skip
        processes.append(manage_start(env, workdir / "fakes.log", "runfakeproviders", *fakes))
        fakes_wait(fake_url)
        for key, receiver in zip(keys, [*slow, prompt], strict=True):
            http("PUT", f"{web}/service/callback", {"url": receiver.url,
                 "bearer_token": "bench-callback-token"}, key)  # fmt: skip
        # A drain may be mid-POST or waiting for a retry when asked to stop: SIGKILL after 30 s.
        processes.append(manage_start(env, workdir / "qcluster.log", "qcluster", session=True))
        phase(web, fake_url, keys[2], prompt, 1)  # warm-up: both clusters are up
        alone = phase(web, fake_url, keys[2], prompt, args.texts)
        for key in keys[:2]:
            items = [{"phone_number": "07700 900123", "content": "Hi"}] * args.backlog
            for start in range(0, len(items), 1000):
                chunk = {"notifications": items[start : start + 1000]}
                http("POST", f"{web}/notifications/sms/batch", chunk, key)
        # Their texts all sent (a backlog of deliveries is not what is measured here) and their
        # callbacks under way.
        sent_before = 1 + args.texts + 2 * args.backlog
        deadline = time.monotonic() + 120
        while len(provider_times(fake_url)) < sent_before or not all(r.count for r in slow):
            if time.monotonic() > deadline:
                raise BenchError(f"the slow services' backlog did not start (logs: {workdir})")
            time.sleep(0.2)
        neighbours = phase(web, fake_url, keys[2], prompt, args.texts)
        busy = [r.count for r in slow]
        most_in_flight = max(r.most_in_flight for r in slow)
    finally:
        for process in processes:
            process_stop(process, timeout=30)
        for receiver in [*slow, prompt]:
            receiver.stop()

    provider, provider_alone = percentiles(neighbours["provider"]), percentiles(alone["provider"])
    callback, callback_alone = percentiles(neighbours["callback"]), percentiles(alone["callback"])
    provider_met = provider["p95"] <= provider_alone["p95"] + MARGIN_MS
    callback_met = callback["p95"] <= callback_alone["p95"] + MARGIN_MS
    context = (
        f"{args.texts} texts a phase, 1/s; two services with {args.backlog} callbacks each to "
        f"endpoints answering in {args.slow_seconds:g} s ({busy[0]} and {busy[1]} of them "
        f"answered by the end, at most {most_in_flight} at once per endpoint); Q_WORKERS="
        f"{args.q_workers}, CALLBACK_WORKERS={args.callback_workers}"
    )
    print(context)
    for name, with_them, without, met in (
        ("time to the provider", provider, provider_alone, provider_met),
        ("time to the callback", callback, callback_alone, callback_met),
    ):
        print(
            f"{name}: with slow neighbours p50 {with_them['median']:.0f} ms, p95 "
            f"{with_them['p95']:.0f}, max {with_them['max']:.0f}; alone p50 "
            f"{without['median']:.0f} ms, p95 {without['p95']:.0f}, max {without['max']:.0f}"
            f" ({'met' if met else 'MISSED'})"
        )
    print(f"logs: {workdir}")
    results_write(
        args.json,
        "callbacks_fairness",
        [
            figure(
                "a third service's text to the provider, two slow callback endpoints (p95)",
                value={k: provider[k] for k in ("median", "min", "max")},
                unit="ms",
                baseline=f"alone: p95 {provider_alone['p95']:.0f} ms",
                baseline_value={k: provider_alone[k] for k in ("median", "min", "max")},
                target=f"p95 <= alone + {MARGIN_MS} ms",
                met=provider_met,
                latency_ms={"p95": provider["p95"]},
                note=context,
            ),
            figure(
                "a third service's callback, two slow callback endpoints (p95)",
                value={k: callback[k] for k in ("median", "min", "max")},
                unit="ms",
                baseline=f"alone: p95 {callback_alone['p95']:.0f} ms",
                baseline_value={k: callback_alone[k] for k in ("median", "min", "max")},
                target=f"p95 <= alone + {MARGIN_MS} ms",
                met=callback_met,
                latency_ms={"p95": callback["p95"]},
            ),
        ],
    )
    return 0 if provider_met and callback_met else 1


if __name__ == "__main__":
    run(main)
